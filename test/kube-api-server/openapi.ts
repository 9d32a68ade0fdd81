/**
 * OpenAPI v3 documents, per group-version, shaped for what kubectl reads from them:
 *  - PATCH operations tagged with `x-kubernetes-group-version-kind` and a `fieldValidation`
 *    query parameter, so kubectl validates server-side (`?fieldValidation=Strict`) instead of
 *    needing client-side schemas;
 *  - PATCH request bodies list JSON / merge / apply patches but not strategic merge, so kubectl
 *    apply builds its three-way strategic merge patch from its compiled-in Go types (built-ins)
 *    or falls back to JSON merge patch (custom resources), exactly as against a real server;
 *  - component schemas carrying `x-kubernetes-group-version-kind`, which `kubectl explain` uses.
 * /openapi/v2 is deliberately absent (404): kubectl treats that as "no v2 schema" and moves on.
 */
import { createHash } from 'node:crypto';
import type { JSONSchemaProps } from './openapi-validate.ts';
import type { ResourceRegistry, ResourceType } from './resources.ts';

const OBJECT_META = 'io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta';

const objectMetaSchema = {
  description: 'ObjectMeta is metadata that all persisted resources must have, which includes all objects users must create.',
  type: 'object',
  properties: {
    name: { type: 'string', description: 'Name must be unique within a namespace.' },
    generateName: { type: 'string', description: 'GenerateName is an optional prefix, used by the server, to generate a unique name ONLY IF the Name field has not been provided.' },
    namespace: { type: 'string', description: 'Namespace defines the space within which each name must be unique.' },
    labels: { type: 'object', additionalProperties: { type: 'string', default: '' }, description: 'Map of string keys and values that can be used to organize and categorize (scope and select) objects.' },
    annotations: { type: 'object', additionalProperties: { type: 'string', default: '' }, description: 'Annotations is an unstructured key value map stored with a resource.' },
    finalizers: { type: 'array', items: { type: 'string', default: '' }, description: 'Must be empty before the object is deleted from the registry.' },
    resourceVersion: { type: 'string', description: 'An opaque value that represents the internal version of this object.' },
    generation: { type: 'integer', format: 'int64', description: 'A sequence number representing a specific generation of the desired state.' },
    uid: { type: 'string', description: 'UID is the unique in time and space value for this object.' },
    creationTimestamp: { type: 'string', format: 'date-time', description: 'CreationTimestamp is a timestamp representing the server time when this object was created.' },
    deletionTimestamp: { type: 'string', format: 'date-time', description: 'DeletionTimestamp is RFC 3339 date and time at which this resource will be deleted.' },
    ownerReferences: { type: 'array', items: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true }, description: 'List of objects depended by this object.' },
  },
};

function schemaName(rt: ResourceType): string {
  if (!rt.group) return `io.k8s.api.core.${rt.version}.${rt.kind}`;
  if (rt.group.endsWith('.k8s.io') || !rt.group.includes('.')) return `io.k8s.api.${rt.group.split('.')[0]}.${rt.version}.${rt.kind}`;
  return `${rt.group.split('.').reverse().join('.')}.${rt.version}.${rt.kind}`;
}

function resourceSchema(rt: ResourceType): Record<string, unknown> {
  const gvk = [{ group: rt.group, version: rt.version, kind: rt.kind }];
  const base: JSONSchemaProps = rt.rawSchema ?? {
    type: 'object',
    description: `${rt.kind} (${rt.group || 'core'}/${rt.version}). This test server does not carry the full schema of built-in types.`,
    properties: {
      spec: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true, description: `Desired state of the ${rt.kind}.` },
      status: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true, description: `Observed state of the ${rt.kind}.` },
    },
  };
  const props = { ...base.properties } as Record<string, unknown>;
  props.apiVersion ??= { type: 'string', description: 'APIVersion defines the versioned schema of this representation of an object.' };
  props.kind ??= { type: 'string', description: 'Kind is a string value representing the REST resource this object represents.' };
  props.metadata = { description: "Standard object's metadata.", allOf: [{ $ref: `#/components/schemas/${OBJECT_META}` }], default: {} };
  return { ...base, properties: props, 'x-kubernetes-group-version-kind': gvk };
}

function operations(rt: ResourceType): Record<string, unknown> {
  const gvk = { group: rt.group, version: rt.version, kind: rt.kind };
  const ref = { $ref: `#/components/schemas/${schemaName(rt)}` };
  const ok = { '200': { description: 'OK', content: { 'application/json': { schema: ref } } } };
  const q = (name: string) => ({ name, in: 'query', schema: { type: 'string', uniqueItems: true } });
  const op = (action: string, extra: Record<string, unknown> = {}) => ({
    operationId: `${action}${rt.kind}`, 'x-kubernetes-action': action, 'x-kubernetes-group-version-kind': gvk, responses: ok, ...extra,
  });
  return {
    get: op('get'),
    put: op('put', { parameters: [q('dryRun'), q('fieldManager'), q('fieldValidation')], requestBody: { content: { '*/*': { schema: ref } } } }),
    patch: op('patch', {
      parameters: [q('dryRun'), q('fieldManager'), q('fieldValidation'), { name: 'force', in: 'query', schema: { type: 'boolean', uniqueItems: true } }],
      requestBody: {
        content: {
          'application/json-patch+json': { schema: { type: 'object' } },
          'application/merge-patch+json': { schema: { type: 'object' } },
          'application/apply-patch+yaml': { schema: { type: 'object' } },
        },
        required: true,
      },
    }),
    delete: op('delete'),
  };
}

function pathFor(rt: ResourceType): string {
  const prefix = rt.group ? `/apis/${rt.group}/${rt.version}` : `/api/${rt.version}`;
  return rt.namespaced ? `${prefix}/namespaces/{namespace}/${rt.plural}/{name}` : `${prefix}/${rt.plural}/{name}`;
}

export function groupVersionDocument(registry: ResourceRegistry, groupName: string, version: string): Record<string, unknown> | undefined {
  const types = registry.all().filter((t) => t.group === groupName && t.version === version && !t.virtual);
  if (types.length === 0) return undefined;
  const paths: Record<string, unknown> = {};
  const schemas: Record<string, unknown> = { [OBJECT_META]: objectMetaSchema };
  for (const rt of types) {
    paths[pathFor(rt)] = operations(rt);
    schemas[schemaName(rt)] = resourceSchema(rt);
  }
  return { openapi: '3.0.0', info: { title: 'Kubernetes', version: 'v1.32.0' }, paths, components: { schemas } };
}

export function rootDocument(registry: ResourceRegistry): Record<string, unknown> {
  const paths: Record<string, unknown> = {};
  for (const [g, versions] of registry.groups()) {
    for (const v of versions) {
      const key = g ? `apis/${g}/${v}` : `api/${v}`;
      const doc = groupVersionDocument(registry, g, v);
      if (!doc) continue;
      const hash = createHash('sha512').update(JSON.stringify(doc)).digest('hex').slice(0, 128).toUpperCase();
      paths[key] = { serverRelativeURL: `/openapi/v3/${key}?hash=${hash}` };
    }
  }
  return { paths };
}
