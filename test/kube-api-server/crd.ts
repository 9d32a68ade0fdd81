/**
 * CustomResourceDefinitions: checking one the way the apiextensions server does (the parts that
 * catch real mistakes — names, versions, schema presence, CEL rules that compile, defaults that
 * validate) and turning each served version into a ResourceType.
 */
import { fieldInvalid, fieldRequired, type FieldError } from './errors.ts';
import { CompiledSchema, validateValue, type JSONSchemaProps } from './openapi-validate.ts';
import { ALL_VERBS, type KubeObject, type PrinterColumn, type ResourceType, type ScaleSubresource } from './resources.ts';

interface CrdVersion {
  name: string;
  served: boolean;
  storage: boolean;
  schema?: { openAPIV3Schema?: JSONSchemaProps };
  subresources?: { status?: object; scale?: ScaleSubresource };
  additionalPrinterColumns?: PrinterColumn[];
  selectableFields?: { jsonPath: string }[];
}

interface CrdSpec {
  group: string;
  names: { kind: string; listKind?: string; plural: string; singular?: string; shortNames?: string[]; categories?: string[] };
  scope: 'Namespaced' | 'Cluster';
  versions: CrdVersion[];
}

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Validates a CRD and compiles its versions; the errors are 422 causes, like the real server's. */
export function compileCrd(crd: KubeObject): { types: ResourceType[]; errors: FieldError[] } {
  const errors: FieldError[] = [];
  const spec = crd.spec as CrdSpec | undefined;
  if (!spec) return { types: [], errors: [fieldRequired('spec')] };
  const { group, names, scope, versions } = spec;
  if (!group) errors.push(fieldRequired('spec.group'));
  else if (!DNS_SUBDOMAIN.test(group) || !group.includes('.')) errors.push(fieldInvalid('spec.group', group, 'should be a domain with at least one dot'));
  if (!names?.plural) errors.push(fieldRequired('spec.names.plural'));
  if (!names?.kind) errors.push(fieldRequired('spec.names.kind'));
  if (scope !== 'Namespaced' && scope !== 'Cluster') errors.push({ field: 'spec.scope', reason: 'FieldValueNotSupported', detail: `Unsupported value: ${JSON.stringify(scope ?? '')}: supported values: "Cluster", "Namespaced"` });
  if (names?.plural && group && crd.metadata.name !== `${names.plural}.${group}`) {
    errors.push(fieldInvalid('metadata.name', crd.metadata.name, 'must be spec.names.plural+"."+spec.group'));
  }
  if (!Array.isArray(versions) || versions.length === 0) errors.push(fieldRequired('spec.versions', 'must have exactly one version marked as storage version'));
  else if (versions.filter((v) => v.storage).length !== 1) errors.push(fieldInvalid('spec.versions', 'array', 'must have exactly one version marked as storage version'));
  const types: ResourceType[] = [];
  (versions ?? []).forEach((v, i) => {
    const vp = `spec.versions[${i}]`;
    const schema = v.schema?.openAPIV3Schema;
    if (!schema) {
      errors.push(fieldRequired(`${vp}.schema.openAPIV3Schema`, 'schemas are required'));
      return;
    }
    if (schema.type !== 'object') errors.push(fieldInvalid(`${vp}.schema.openAPIV3Schema.type`, schema.type ?? '', 'must be object at the root'));
    const compiled = new CompiledSchema(schema);
    errors.push(...compiled.compile(`${vp}.schema.openAPIV3Schema`));
    errors.push(...checkDefaults(schema, `${vp}.schema.openAPIV3Schema`));
    if (!v.served || errors.length > 0 || !names) return;
    types.push({
      group, version: v.name, kind: names.kind,
      listKind: names.listKind ?? `${names.kind}List`,
      plural: names.plural,
      singular: names.singular ?? names.kind.toLowerCase(),
      namespaced: scope === 'Namespaced',
      shortNames: names.shortNames ?? [],
      categories: names.categories ?? [],
      verbs: ALL_VERBS,
      storageKey: `${group}/${names.plural}`,
      status: v.subresources?.status !== undefined,
      ...(v.subresources?.scale ? { scale: v.subresources.scale } : {}),
      generation: true,
      requireResourceVersionOnUpdate: true,
      schema: compiled,
      rawSchema: schema,
      printerColumns: v.additionalPrinterColumns ?? [{ name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' }],
      crd: crd.metadata.name as string,
      // CRD selectableFields (beta in 1.31+, on by default) are the only extra field labels.
      fieldLabels: (v.selectableFields ?? []).map((f) => f.jsonPath.replace(/^\./, '')),
    });
  });
  return { types, errors };
}

/** Defaults must validate against their own schema, or every object would be refused later. */
function checkDefaults(s: JSONSchemaProps, path: string): FieldError[] {
  const out: FieldError[] = [];
  if (s.default !== undefined) {
    for (const e of validateValue(structuredClone(s.default), { ...s, default: undefined }, `${path}.default`)) {
      out.push(fieldInvalid(`${path}.default`, s.default, e.detail));
    }
  }
  for (const [k, v] of Object.entries(s.properties ?? {})) out.push(...checkDefaults(v, `${path}.properties[${k}]`));
  if (s.items) out.push(...checkDefaults(s.items, `${path}.items`));
  return out;
}

/** The status a real apiextensions server reports once a CRD is established. */
export function establishedStatus(crd: KubeObject): Record<string, unknown> {
  const spec = crd.spec as CrdSpec;
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  return {
    conditions: [
      { type: 'NamesAccepted', status: 'True', reason: 'NoConflicts', message: 'no conflicts found', lastTransitionTime: now },
      { type: 'Established', status: 'True', reason: 'InitialNamesAccepted', message: 'the initial names have been accepted', lastTransitionTime: now },
    ],
    acceptedNames: { ...spec.names, listKind: spec.names.listKind ?? `${spec.names.kind}List`, singular: spec.names.singular ?? spec.names.kind.toLowerCase() },
    storedVersions: spec.versions.filter((v) => v.storage).map((v) => v.name),
  };
}
