import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** Typed search attributes on every workflow, so an SRE finds a deployment's runs in the Web UI. */
export const DeploymentId = defineSearchAttributeKey('DeploymentId', SearchAttributeType.KEYWORD);
export const TrustDomain = defineSearchAttributeKey('TrustDomain', SearchAttributeType.KEYWORD);
export const Operation = defineSearchAttributeKey('Operation', SearchAttributeType.KEYWORD);
export const DeploymentStatus = defineSearchAttributeKey('DeploymentStatus', SearchAttributeType.KEYWORD);
/** On every drill: which scenario, at which outage class, and (once known) its verdict. */
export const Scenario = defineSearchAttributeKey('Scenario', SearchAttributeType.KEYWORD);
export const OutageClass = defineSearchAttributeKey('OutageClass', SearchAttributeType.KEYWORD);
export const Verdict = defineSearchAttributeKey('Verdict', SearchAttributeType.KEYWORD);

/** `--search-attribute` values for `temporal server start-dev`, which must know them before use. */
export const SEARCH_ATTRIBUTE_REGISTRATIONS = [
  'DeploymentId=Keyword',
  'TrustDomain=Keyword',
  'Operation=Keyword',
  'DeploymentStatus=Keyword',
  'Scenario=Keyword',
  'OutageClass=Keyword',
  'Verdict=Keyword',
];

export const TASK_QUEUE = 'spire-drill';
