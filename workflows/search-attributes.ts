import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** Typed search attributes on every workflow, so an SRE finds a deployment's runs in the Web UI. */
export const DeploymentId = defineSearchAttributeKey('DeploymentId', SearchAttributeType.KEYWORD);
export const TrustDomain = defineSearchAttributeKey('TrustDomain', SearchAttributeType.KEYWORD);
export const Operation = defineSearchAttributeKey('Operation', SearchAttributeType.KEYWORD);
export const DeploymentStatus = defineSearchAttributeKey('DeploymentStatus', SearchAttributeType.KEYWORD);

/** `--search-attribute` values for `temporal server start-dev`, which must know them before use. */
export const SEARCH_ATTRIBUTE_REGISTRATIONS = [
  'DeploymentId=Keyword',
  'TrustDomain=Keyword',
  'Operation=Keyword',
  'DeploymentStatus=Keyword',
];

export const TASK_QUEUE = 'spire-drill';
