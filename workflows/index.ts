export { deploymentWorkflow } from './deployment-workflow.js';
export { downstreamBootstrapWorkflow } from './downstream-bootstrap-workflow.js';
export { drillWorkflow } from './drill-workflow.js';
export { rotationWorkflow } from './rotation-workflow.js';
export { suiteWorkflow } from './suite-workflow.js';
