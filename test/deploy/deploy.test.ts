// The deployment files (deploy/), checked offline against the code they deploy: every environment variable
// they set is one Terrapin reads, ports and probes agree with what the processes serve, the worker is given
// longer to stop than it gives terraform, and the cluster gets the search attributes the workflows write.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import * as http from '../../app/http.ts';
import { SEARCH_ATTRIBUTES } from '../../shared/records.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DEPLOY = join(ROOT, 'deploy');
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

/** Every environment variable name the code reads (`env.NAME`, `env['NAME']`, `process.env.NAME`). */
function namesTheCodeReads(): Set<string> {
  const names = new Set<string>();
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (/\.(ts|mjs)$/.test(entry.name)) {
        for (const m of readFileSync(path, 'utf8').matchAll(/\benv(?:\?)?(?:\.([A-Z][A-Z0-9_]+)\b|\[['"]([A-Z][A-Z0-9_]+)['"]\])/g)) names.add(m[1] ?? m[2]!);
      }
    }
  };
  for (const dir of ['app', 'activities', 'operator', 'shared', 'mcp', 'cli', 'local', 'bin']) walk(join(ROOT, dir));
  return names;
}

const compose = parse(read('deploy/docker-compose.yml'), { merge: true }) as {
  services: Record<string, { image?: string; command?: string[] | string; environment?: Record<string, string>; ports?: string[]; healthcheck?: { test: string[] }; stop_grace_period?: string; security_opt?: string[]; deploy?: { replicas?: number }; env_file?: unknown }>;
};
const terrapinServices = Object.entries(compose.services).filter(([, s]) => s.image === 'terrapin:local' && s.command && (s.command as string[])[0] === 'npm');

type K8sDoc = { kind: string; metadata: { name: string }; spec?: any; data?: Record<string, string>; stringData?: Record<string, string> };
const k8sFiles = readdirSync(join(DEPLOY, 'kubernetes')).filter((f) => f.endsWith('.yaml'));
const k8s: K8sDoc[] = k8sFiles.flatMap((f) =>
  parseAllDocuments(readFileSync(join(DEPLOY, 'kubernetes', f), 'utf8')).map((d) => {
    expect(d.errors, f).toEqual([]);
    return d.toJS() as K8sDoc;
  }),
);
const find = (kind: string, name: string) => {
  const doc = k8s.find((d) => d.kind === kind && d.metadata.name === name);
  if (!doc) throw new Error(`no ${kind} ${name} in deploy/kubernetes`);
  return doc;
};
const container = (name: string) => find('Deployment', name).spec.template.spec.containers[0];

/** The worker's shutdown grace from app/worker.ts (what SIGTERM gives running terraform), in seconds. */
function workerShutdownGraceSeconds(): number {
  const m = /shutdownGraceTime:\s*'(\d+) (second|minute)s?'/.exec(read('app/worker.ts'));
  if (!m) throw new Error('shutdownGraceTime not found in app/worker.ts');
  return Number(m[1]) * (m[2] === 'minute' ? 60 : 1);
}

const servedPaths = new Set([http.HEALTH_PATH, ...Object.entries(http).filter(([k, v]) => /_PATH$/.test(k) && typeof v === 'string').map(([, v]) => v as string)]);

describe('deploy/', () => {
  test('every variable the files set is one Terrapin reads (Terrapin containers only)', () => {
    const known = namesTheCodeReads();
    expect(known).toContain('TEMPORAL_ADDRESS'); // the scan works
    const set: Array<[string, string]> = [];
    for (const [name, s] of terrapinServices) for (const k of Object.keys(s.environment ?? {})) set.push([`compose ${name}`, k]);
    for (const d of k8s) {
      if (d.kind === 'ConfigMap' || d.kind === 'Secret') for (const k of Object.keys({ ...d.data, ...d.stringData })) set.push([`${d.kind} ${d.metadata.name}`, k]);
      for (const c of d.spec?.template?.spec?.containers ?? []) for (const e of c.env ?? []) set.push([`${d.metadata.name}`, e.name]);
    }
    expect(set.length).toBeGreaterThan(10);
    expect(set.filter(([, name]) => !known.has(name))).toEqual([]);
    // And .env.example documents every one of them (commented out or not).
    const documented = read('.env.example');
    expect(set.filter(([, name]) => !new RegExp(`^#? ?${name}=`, 'm').test(documented))).toEqual([]);
  });

  test('compose: Temporal on PostgreSQL, the server and two workers from package.json scripts, the PostgreSQL artifact store, env from .env', () => {
    const scripts = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts;
    const server = compose.services.server!;
    const worker = compose.services.worker!;
    expect(server.command).toEqual(['npm', 'run', 'server']);
    expect(worker.command).toEqual(['npm', 'run', 'worker']);
    expect(scripts.server).toMatch(/app\/server\.ts$/);
    expect(scripts.worker).toMatch(/app\/worker\.ts$/);
    expect(worker.deploy?.replicas).toBe(2);
    expect(compose.services.temporal!.environment).toMatchObject({ DB: 'postgres12', POSTGRES_SEEDS: 'postgresql' });
    for (const s of [server, worker]) {
      expect(s.env_file).toEqual([{ path: '.env', required: true }]);
      expect(s.environment!.TEMPORAL_ADDRESS).toBe('temporal:7233');
      const artifacts = new URL(s.environment!.TERRAPIN_ARTIFACTS_URL!);
      expect(artifacts.protocol).toBe('postgres:');
      expect(artifacts.hostname).toBe('postgresql');
      // The database and user the init script creates.
      const init = read('deploy/postgres-init.sql');
      expect(init).toContain(`CREATE DATABASE ${artifacts.pathname.slice(1)} OWNER ${artifacts.username};`);
      expect(init).toContain(`CREATE USER ${artifacts.username} WITH PASSWORD '${artifacts.password}';`);
    }
    expect(compose.services.postgresql!.ports).toBeUndefined(); // not published to the host
  });

  test('ports and probes agree with what the processes serve', () => {
    // compose
    const server = compose.services.server!;
    const worker = compose.services.worker!;
    expect(server.ports).toEqual([`${server.environment!.PORT}:${server.environment!.PORT}`]);
    const probeUrl = (s: typeof server) => new URL(/fetch\('([^']+)'\)/.exec(s.healthcheck!.test.join(' '))![1]!);
    expect(probeUrl(server).port).toBe(server.environment!.PORT);
    expect(probeUrl(worker).port).toBe(worker.environment!.TERRAPIN_METRICS_PORT);
    for (const s of [server, worker]) expect(servedPaths).toContain(probeUrl(s).pathname);
    // kubernetes
    for (const [name, portVar] of [['terrapin-server', 'PORT'], ['terrapin-worker', 'TERRAPIN_METRICS_PORT']] as const) {
      const c = container(name);
      const envValue = c.env.find((e: { name: string }) => e.name === portVar).value;
      const ports = new Map<string, number>(c.ports.map((p: { name: string; containerPort: number }) => [p.name, p.containerPort]));
      expect([...ports.values()]).toEqual([Number(envValue)]);
      for (const [probe, path] of [['livenessProbe', http.HEALTH_PATH], ['readinessProbe', '/readyz']] as const) {
        expect(c[probe].httpGet.path, `${name} ${probe}`).toBe(path);
        expect(servedPaths).toContain(c[probe].httpGet.path);
        expect(ports.has(c[probe].httpGet.port), `${name} ${probe} port`).toBe(true);
      }
    }
    const service = find('Service', 'terrapin-server');
    expect(service.spec.ports[0].targetPort).toBe('http');
    expect(service.spec.selector).toEqual(find('Deployment', 'terrapin-server').spec.template.metadata.labels);
    expect(find('Service', 'terrapin-worker-metrics').spec.ports[0].port).toBe(9464);
  });

  test('the worker gets longer to stop than it gives running terraform', () => {
    const grace = workerShutdownGraceSeconds();
    expect(grace).toBe(120);
    expect(find('Deployment', 'terrapin-worker').spec.template.spec.terminationGracePeriodSeconds).toBeGreaterThan(grace);
    expect(Number(/^(\d+)s$/.exec(compose.services.worker!.stop_grace_period!)![1])).toBeGreaterThan(grace);
  });

  test('the App credentials come from a Secret; the sandbox needs are carried into both files', () => {
    const secret = find('Secret', 'terrapin-github');
    expect(Object.keys(secret.stringData!)).toEqual(expect.arrayContaining(['APP_ID', 'PRIVATE_KEY', 'WEBHOOK_SECRET']));
    for (const name of ['terrapin-server', 'terrapin-worker']) {
      expect(container(name).envFrom).toEqual(expect.arrayContaining([{ secretRef: { name: 'terrapin-github' } }]));
      expect(JSON.stringify(find('Deployment', name))).not.toMatch(/PRIVATE_KEY|WEBHOOK_SECRET/);
    }
    const pod = find('Deployment', 'terrapin-worker').spec.template.spec;
    expect(pod.securityContext.seccompProfile).toEqual({ type: 'Unconfined' });
    expect(pod.securityContext.appArmorProfile).toEqual({ type: 'Unconfined' });
    expect(pod.hostUsers).toBe(false);
    expect(pod.containers[0].securityContext.procMount).toBe('Unmasked');
    expect(compose.services.worker!.security_opt).toEqual(['seccomp=unconfined', 'apparmor=unconfined', 'systempaths=unconfined']);
    // The server runs no repository code: it keeps the runtime's default profile.
    expect(find('Deployment', 'terrapin-server').spec.template.spec.securityContext.seccompProfile).toEqual({ type: 'RuntimeDefault' });
  });

  test('the cluster is given exactly the search attributes the workflows write, with their types', () => {
    const TYPE: Record<string, string> = { KEYWORD: 'Keyword', KEYWORD_LIST: 'KeywordList', INT: 'Int' };
    const expected = Object.values(SEARCH_ATTRIBUTES).map((k) => `${k.name}:${TYPE[k.type]}`).sort();
    const registered = (command: string) => [...command.matchAll(/--name (\w+) --type (\w+)/g)].map((m) => `${m[1]}:${m[2]}`).sort();
    expect(registered((compose.services['temporal-setup']!.command as string[]).join(' '))).toEqual(expected);
    expect(registered(find('Job', 'terrapin-search-attributes').spec.template.spec.containers[0].args.join(' '))).toEqual(expected);
  });

  test('kustomization lists every manifest', () => {
    const kustomization = parse(read('deploy/kubernetes/kustomization.yaml')) as { resources: string[] };
    expect([...kustomization.resources].sort()).toEqual(k8sFiles.filter((f) => f !== 'kustomization.yaml').sort());
    expect(relative(ROOT, DEPLOY)).toBe('deploy');
  });
});
