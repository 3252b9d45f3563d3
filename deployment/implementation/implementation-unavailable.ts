/** A server group's SPIRE cannot run on this host (not built, or without the datastore asked for): the caller's to fix, not retried. */
export class ImplementationUnavailable extends Error {
  constructor(
    readonly group: string,
    reason: string,
  ) {
    super(`server group ${group} cannot run here: ${reason}`);
    this.name = 'ImplementationUnavailable';
  }
}
