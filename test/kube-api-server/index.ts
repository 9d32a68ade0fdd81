/** Public entry of the Kubernetes API test server; see README.md and server.ts for the test hooks. */
export { KubeApiServer, startKubeApiServer, REPO_CRD_DIR, type KubeApiServerOptions } from './server.ts';
export { selfSignedCert, type SelfSignedCert } from './tls.ts';
export type { KubeApi } from './api.ts';
export type { WorkloadMode } from './controllers.ts';
export type { KubeObject, ResourceType } from './resources.ts';
export type { ServiceAccountTokenRequest } from './auth.ts';
export type { ServiceResolver } from './admission.ts';
export { ApiError } from './errors.ts';
