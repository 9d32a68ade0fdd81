/**
 * The sluice.v1.PolicyDiscovery protocol, loaded from the .proto at runtime (no generated code),
 * with TypeScript shapes for its messages. Both the operator (server) and the sidecar (client)
 * import this file, so the wire format has exactly one definition.
 */
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export const PROTO_PATH = fileURLToPath(new URL('./sluice/v1/discovery.proto', import.meta.url));

export interface Hello {
  podNamespace: string;
  podName: string;
  token: string;
  sidecarId: string;
  currentVersion: string;
  /** The kinds the sidecar compiles; empty or absent from a sidecar older than negotiation. */
  supportedKinds?: string[];
}
/** `warnings`: what a skew-tolerant compile left out of the accepted snapshot. */
export interface Ack { version: string; warnings?: string[]; resourceErrors?: ResourceError[] }
/** A resource of an accepted snapshot that the sidecar could not put in place, and why. */
export interface ResourceError { kind: string; namespace: string; name: string; error: string }
export interface Nack { version: string; error: string }
export interface Report { json: string }
/** A breaker rule's circuit changed state in the sidecar (a narrative: the operator records an Event). */
export interface CircuitTransition {
  policyNamespace: string;
  policyName: string;
  rule: string;
  from: string;
  to: string;
  reason: string;
  timeUnixMs: number;
  openMs: number;
  /** Transitions the sidecar did not send since its previous one (its own rate limit). */
  dropped: number;
}

/** What a sidecar sends; exactly one field is set (proto `oneof message`). */
export type DiscoveryRequest =
  | { hello: Hello; message?: 'hello' }
  | { ack: Ack; message?: 'ack' }
  | { nack: Nack; message?: 'nack' }
  | { report: Report; message?: 'report' }
  | { circuitTransition: CircuitTransition; message?: 'circuitTransition' };

export interface PolicyResource {
  kind: string;
  namespace: string;
  name: string;
  generation: number;
  /** The resource as read from the API (apiVersion, kind, metadata, spec), JSON-encoded. */
  json: string;
}
export interface Snapshot {
  version: string;
  /** The policies selecting the pod: what it enforces (and, for TaskQueues, consumes). */
  resources: PolicyResource[];
  /**
   * Every accepted TaskQueue of the pod's namespace, which the app may produce to without being
   * selected (never consumed because of this list). Absent from an older operator's snapshots.
   */
  producibleTaskQueues?: PolicyResource[];
}
export interface UpstreamEndpoints { upstream: string; addresses: string[] }
/** Ready endpoints of the pod's Upstreams, apart from snapshots (see discovery.proto). */
export interface EndpointUpdate { upstreams: UpstreamEndpoints[] }
/** The operator asks one worker sidecar of a TaskQueue to start a dead-letter redrive (see the .proto). */
export interface RedriveRequestMessage {
  queueNamespace: string;
  queueName: string;
  id: string;
  json: string;
}
/** What the operator sends; one field is set (proto `oneof message`). */
export interface DiscoveryResponse {
  snapshot?: Snapshot;
  endpoints?: EndpointUpdate;
  redrive?: RedriveRequestMessage;
  message?: 'snapshot' | 'endpoints' | 'redrive';
}

export type DiscoveryStream = grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse>;
export type ServerDiscoveryStream = grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>;

export interface PolicyDiscoveryClient extends grpc.Client {
  streamPolicies(options?: grpc.CallOptions): DiscoveryStream;
}

interface Loaded {
  service: grpc.ServiceDefinition;
  Client: new (address: string, credentials: grpc.ChannelCredentials, options?: grpc.ClientOptions) => PolicyDiscoveryClient;
}

let loaded: Loaded | undefined;

/** The service definition (for the server) and client constructor, loaded once per process. */
export function policyDiscovery(): Loaded {
  if (loaded) return loaded;
  const def = protoLoader.loadSync(PROTO_PATH, {
    keepCase: false,
    longs: Number,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    sluice: { v1: { PolicyDiscovery: grpc.ServiceClientConstructor } };
  };
  const ctor = pkg.sluice.v1.PolicyDiscovery;
  loaded = { service: ctor.service, Client: ctor as unknown as Loaded['Client'] };
  return loaded;
}
