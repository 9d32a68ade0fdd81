/**
 * The test control plane's certificates and keys, made with the openssl command line: a CA; the
 * API server's serving certificate for 127.0.0.1; client certificates for the admin (group
 * system:masters), the controller-manager and the scheduler (the users their bootstrap RBAC roles
 * are bound to); and the service-account signing key pair. ECDSA P-256: quick to make.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ClientCert {
  cert: string;
  key: string;
}

export interface Pki {
  dir: string;
  caCert: string;
  caKey: string;
  servingCert: string;
  servingKey: string;
  serviceAccountKey: string;
  serviceAccountPub: string;
  clients: Record<'admin' | 'controllerManager' | 'scheduler', ClientCert>;
}

function openssl(dir: string, args: string[]): void {
  try {
    execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString() ?? '';
    throw new Error(`openssl ${args[0]} failed: ${stderr || String(err)}`);
  }
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

function signed(dir: string, name: string, subject: string, extensions: string): void {
  writeFileSync(join(dir, `${name}.ext`), extensions);
  openssl(dir, ['req', ...EC, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject]);
  openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial',
    '-out', `${name}.crt`, '-days', '30', '-extfile', `${name}.ext`]);
}

export function createPki(dir: string): Pki {
  openssl(dir, ['req', '-x509', ...EC, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '30', '-subj', '/CN=sluice-test-ca']);
  signed(dir, 'apiserver', '/CN=kube-apiserver',
    'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature\n');
  const client = 'extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature\n';
  signed(dir, 'admin', '/O=system:masters/CN=sluice-test-admin', client);
  signed(dir, 'controller-manager', '/CN=system:kube-controller-manager', client);
  signed(dir, 'scheduler', '/CN=system:kube-scheduler', client);
  openssl(dir, ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-out', 'sa.key']);
  openssl(dir, ['pkey', '-in', 'sa.key', '-pubout', '-out', 'sa.pub']);
  const p = (f: string) => join(dir, f);
  const pair = (n: string): ClientCert => ({ cert: p(`${n}.crt`), key: p(`${n}.key`) });
  return {
    dir,
    caCert: p('ca.crt'),
    caKey: p('ca.key'),
    servingCert: p('apiserver.crt'),
    servingKey: p('apiserver.key'),
    serviceAccountKey: p('sa.key'),
    serviceAccountPub: p('sa.pub'),
    clients: { admin: pair('admin'), controllerManager: pair('controller-manager'), scheduler: pair('scheduler') },
  };
}

/** A kubeconfig with the credentials inlined, as `kubectl config view --raw` would print it. */
export function kubeconfig(server: string, caCert: string, user: { cert: string; key: string } | { token: string }, name = 'sluice-test'): string {
  const b64 = (f: string) => readFileSync(f).toString('base64');
  const creds = 'token' in user
    ? `    token: ${user.token}`
    : `    client-certificate-data: ${b64(user.cert)}\n    client-key-data: ${b64(user.key)}`;
  return `apiVersion: v1
kind: Config
clusters:
- name: ${name}
  cluster:
    server: ${server}
    certificate-authority-data: ${b64(caCert)}
users:
- name: ${name}
  user:
${creds}
contexts:
- name: ${name}
  context:
    cluster: ${name}
    user: ${name}
current-context: ${name}
`;
}
