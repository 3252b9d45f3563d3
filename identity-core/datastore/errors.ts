/** Errors the datastore raises, so callers can answer NotFound, AlreadyExists or "datastore down" precisely. */
import type { RegistrationEntry } from './records.js';

export class DatastoreError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

export class NotFoundError extends DatastoreError {}

export class AlreadyExistsError extends DatastoreError {
  constructor(
    message: string,
    readonly existing?: RegistrationEntry,
  ) {
    super(message);
  }
}

/** The database cannot be reached or stopped answering: the error SPIRE's callers see during an outage. */
export class DatastoreUnavailableError extends DatastoreError {}
