/**
 * Just enough Kubernetes protobuf to read what kubectl's typed clients POST: `kubectl create
 * namespace|configmap|secret|serviceaccount` send `application/vnd.kubernetes.protobuf` bodies
 * (a `k8s\0` magic, then a runtime.Unknown envelope around the typed message). Responses are
 * always JSON, which client-go accepts whatever it asked for. Other protobuf kinds get 415.
 */
import { unsupportedMediaType } from './errors.ts';

type Field = [name: string, type: FieldType, repeated?: boolean];
type FieldType = 'string' | 'int' | 'bool' | 'bytes' | 'time' | 'intOrString' | 'map<string,string>' | 'map<string,bytes>' | 'map<string,quantity>' | Schema;
interface Schema { [no: number]: Field }

const OWNER_REF: Schema = { 1: ['kind', 'string'], 3: ['name', 'string'], 4: ['uid', 'string'], 5: ['apiVersion', 'string'], 6: ['controller', 'bool'], 7: ['blockOwnerDeletion', 'bool'] };
const OBJECT_META: Schema = {
  1: ['name', 'string'], 2: ['generateName', 'string'], 3: ['namespace', 'string'], 5: ['uid', 'string'],
  6: ['resourceVersion', 'string'], 7: ['generation', 'int'], 8: ['creationTimestamp', 'time'], 9: ['deletionTimestamp', 'time'],
  10: ['deletionGracePeriodSeconds', 'int'], 11: ['labels', 'map<string,string>'], 12: ['annotations', 'map<string,string>'],
  13: ['ownerReferences', OWNER_REF, true], 14: ['finalizers', 'string', true],
};
const OBJECT_REF: Schema = { 1: ['kind', 'string'], 2: ['namespace', 'string'], 3: ['name', 'string'], 4: ['uid', 'string'], 5: ['apiVersion', 'string'], 6: ['resourceVersion', 'string'], 7: ['fieldPath', 'string'] };

const LABEL_SELECTOR: Schema = {
  1: ['matchLabels', 'map<string,string>'],
  2: ['matchExpressions', { 1: ['key', 'string'], 2: ['operator', 'string'], 3: ['values', 'string', true] }, true],
};
const INT_OR_STRING: FieldType = 'intOrString';
const QUANTITY_MAP: FieldType = 'map<string,quantity>';
const CONTAINER: Schema = {
  1: ['name', 'string'], 2: ['image', 'string'], 3: ['command', 'string', true], 4: ['args', 'string', true],
  5: ['workingDir', 'string'],
  6: ['ports', { 1: ['name', 'string'], 2: ['hostPort', 'int'], 3: ['containerPort', 'int'], 4: ['protocol', 'string'], 5: ['hostIP', 'string'] }, true],
  7: ['env', { 1: ['name', 'string'], 2: ['value', 'string'] }, true],
  8: ['resources', { 1: ['limits', QUANTITY_MAP], 2: ['requests', QUANTITY_MAP] }],
  9: ['volumeMounts', { 1: ['name', 'string'], 2: ['readOnly', 'bool'], 3: ['mountPath', 'string'], 4: ['subPath', 'string'] }, true],
  13: ['terminationMessagePath', 'string'], 14: ['imagePullPolicy', 'string'], 16: ['stdin', 'bool'], 17: ['stdinOnce', 'bool'],
  18: ['tty', 'bool'], 20: ['terminationMessagePolicy', 'string'], 24: ['restartPolicy', 'string'],
};
const POD_SPEC: Schema = {
  2: ['containers', CONTAINER, true], 3: ['restartPolicy', 'string'], 4: ['terminationGracePeriodSeconds', 'int'],
  6: ['dnsPolicy', 'string'], 7: ['nodeSelector', 'map<string,string>'], 8: ['serviceAccountName', 'string'],
  9: ['serviceAccount', 'string'], 10: ['nodeName', 'string'], 19: ['schedulerName', 'string'],
  20: ['initContainers', CONTAINER, true], 21: ['automountServiceAccountToken', 'bool'],
};
const POD_TEMPLATE: Schema = { 1: ['metadata', OBJECT_META], 2: ['spec', POD_SPEC] };

const KINDS: Record<string, Schema> = {
  'v1/Namespace': { 1: ['metadata', OBJECT_META], 2: ['spec', { 1: ['finalizers', 'string', true] }], 3: ['status', { 1: ['phase', 'string'] }] },
  'v1/ConfigMap': { 1: ['metadata', OBJECT_META], 2: ['data', 'map<string,string>'], 3: ['binaryData', 'map<string,bytes>'], 4: ['immutable', 'bool'] },
  'v1/Secret': { 1: ['metadata', OBJECT_META], 2: ['data', 'map<string,bytes>'], 3: ['type', 'string'], 4: ['stringData', 'map<string,string>'], 5: ['immutable', 'bool'] },
  'v1/ServiceAccount': { 1: ['metadata', OBJECT_META], 2: ['secrets', OBJECT_REF, true], 3: ['imagePullSecrets', { 1: ['name', 'string'] }, true], 4: ['automountServiceAccountToken', 'bool'] },
  'v1/Pod': { 1: ['metadata', OBJECT_META], 2: ['spec', POD_SPEC] },
  'v1/Service': {
    1: ['metadata', OBJECT_META],
    2: ['spec', {
      1: ['ports', { 1: ['name', 'string'], 2: ['protocol', 'string'], 3: ['port', 'int'], 4: ['targetPort', INT_OR_STRING], 5: ['nodePort', 'int'] }, true],
      2: ['selector', 'map<string,string>'], 3: ['clusterIP', 'string'], 4: ['type', 'string'], 7: ['sessionAffinity', 'string'],
    }],
  },
  'apps/v1/Deployment': {
    1: ['metadata', OBJECT_META],
    2: ['spec', {
      1: ['replicas', 'int'], 2: ['selector', LABEL_SELECTOR], 3: ['template', POD_TEMPLATE],
      4: ['strategy', { 1: ['type', 'string'], 2: ['rollingUpdate', { 1: ['maxUnavailable', INT_OR_STRING], 2: ['maxSurge', INT_OR_STRING] }] }],
      5: ['minReadySeconds', 'int'], 6: ['revisionHistoryLimit', 'int'], 7: ['paused', 'bool'], 9: ['progressDeadlineSeconds', 'int'],
    }],
  },
  'authentication.k8s.io/v1/TokenRequest': {
    1: ['metadata', OBJECT_META],
    2: ['spec', { 1: ['audiences', 'string', true], 4: ['expirationSeconds', 'int'], 3: ['boundObjectRef', { 1: ['kind', 'string'], 2: ['apiVersion', 'string'], 3: ['name', 'string'], 4: ['uid', 'string'] }] }],
  },
  'authentication.k8s.io/v1/TokenReview': { 1: ['metadata', OBJECT_META], 2: ['spec', { 1: ['token', 'string'], 2: ['audiences', 'string', true] }] },
  'authentication.k8s.io/v1/SelfSubjectReview': { 1: ['metadata', OBJECT_META] },
  'authorization.k8s.io/v1/SelfSubjectAccessReview': {
    1: ['metadata', OBJECT_META],
    2: ['spec', {
      1: ['resourceAttributes', { 1: ['namespace', 'string'], 2: ['verb', 'string'], 3: ['group', 'string'], 4: ['version', 'string'], 5: ['resource', 'string'], 6: ['subresource', 'string'], 7: ['name', 'string'] }],
      2: ['nonResourceAttributes', { 1: ['path', 'string'], 2: ['verb', 'string'] }],
    }],
  },
  'autoscaling/v1/Scale': { 1: ['metadata', OBJECT_META], 2: ['spec', { 1: ['replicas', 'int'] }] },
};

const DELETE_OPTIONS: Schema = {
  1: ['gracePeriodSeconds', 'int'], 2: ['preconditions', { 1: ['uid', 'string'], 2: ['resourceVersion', 'string'] }],
  3: ['orphanDependents', 'bool'], 4: ['propagationPolicy', 'string'], 5: ['dryRun', 'string', true],
};

const KEEP_ZERO = new Set(['replicas', 'automountServiceAccountToken', 'immutable', 'expirationSeconds', 'terminationGracePeriodSeconds']);

class Reader {
  pos = 0;
  readonly buf: Buffer;
  constructor(buf: Buffer) {
    this.buf = buf;
  }
  get done(): boolean { return this.pos >= this.buf.length; }
  varint(): bigint {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      const b = this.buf[this.pos++];
      if (b === undefined) throw new Error('truncated varint');
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
    }
  }
  bytes(): Buffer {
    const len = Number(this.varint());
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) this.bytes();
    else if (wire === 5) this.pos += 4;
    else throw new Error(`unsupported wire type ${wire}`);
  }
}

function decode(buf: Buffer, schema: Schema): Record<string, unknown> {
  const r = new Reader(buf);
  const out: Record<string, unknown> = {};
  while (!r.done) {
    const key = Number(r.varint());
    const no = key >> 3;
    const wire = key & 7;
    const field = schema[no];
    if (!field) { r.skip(wire); continue; }
    const [name, type, repeated] = field;
    let value: unknown;
    if (type === 'string') value = r.bytes().toString('utf8');
    else if (type === 'bytes') value = r.bytes().toString('base64');
    else if (type === 'int') value = Number(BigInt.asIntN(64, r.varint()));
    else if (type === 'bool') value = r.varint() !== 0n;
    else if (type === 'time') {
      const t = decode(r.bytes(), { 1: ['seconds', 'int'], 2: ['nanos', 'int'] });
      value = t.seconds ? new Date(Number(t.seconds) * 1000).toISOString().replace(/\.\d+Z$/, 'Z') : undefined;
    } else if (type === 'intOrString') {
      const v = decode(r.bytes(), { 1: ['type', 'int'], 2: ['intVal', 'int'], 3: ['strVal', 'string'] });
      value = v.type === 1 ? (v.strVal ?? '') : (v.intVal ?? 0);
    } else if (type === 'map<string,string>' || type === 'map<string,bytes>' || type === 'map<string,quantity>') {
      const valueType: FieldType = type === 'map<string,string>' ? 'string' : type === 'map<string,bytes>' ? 'bytes' : { 1: ['string', 'string'] };
      const entry = decode(r.bytes(), { 1: ['key', 'string'], 2: ['value', valueType] });
      const map = (out[name] ??= {}) as Record<string, unknown>;
      const v = entry.value;
      map[String(entry.key ?? '')] = typeof v === 'object' && v !== null ? (v as { string?: string }).string ?? '' : v ?? '';
      continue;
    } else value = decode(r.bytes(), type);
    // Go structs encode every non-pointer field; JSON omits their zero values, so drop them here
    // (except pointer fields where an explicit 0/false means something).
    if (value === undefined || value === '') continue;
    if ((value === 0 || value === false) && !KEEP_ZERO.has(name)) continue;
    if (repeated) ((out[name] ??= []) as unknown[]).push(value);
    else out[name] = value;
  }
  return out;
}

/** Decodes a `application/vnd.kubernetes.protobuf` request body into its JSON object form. */
export function decodeKubeProtobuf(body: Buffer): Record<string, unknown> {
  if (body.length < 4 || body.subarray(0, 4).toString('latin1') !== 'k8s\0') throw unsupportedMediaType('protobuf body without the k8s magic prefix');
  const unknown = decode(body.subarray(4), {
    1: ['typeMeta', { 1: ['apiVersion', 'string'], 2: ['kind', 'string'] }],
    2: ['raw', 'bytes'],
  });
  const tm = (unknown.typeMeta ?? {}) as { apiVersion?: string; kind?: string };
  const schema = tm.kind === 'DeleteOptions' ? DELETE_OPTIONS : KINDS[`${tm.apiVersion}/${tm.kind}`];
  if (!schema) {
    throw unsupportedMediaType(`the test API server cannot decode protobuf ${tm.apiVersion}/${tm.kind}; send application/json (accepted media types include: application/json, application/yaml)`);
  }
  const obj = decode(Buffer.from(String(unknown.raw ?? ''), 'base64'), schema);
  return { apiVersion: tm.apiVersion, kind: tm.kind, ...obj };
}
