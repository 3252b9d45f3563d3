export { deploymentWorkflow } from './deployment-workflow.js';
export { downstreamBootstrapWorkflow } from './downstream-bootstrap-workflow.js';
export { rotationWorkflow } from './rotation-workflow.js';
