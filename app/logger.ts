// pino JSON logs. Secrets are redacted by key wherever they appear, and token-shaped strings are
// scrubbed from messages, because a log line is the easiest place for a token to leak.
import pino, { stdSerializers, type Logger } from 'pino';

const SECRET_KEYS = [
  'token',
  'privateKey',
  'private_key',
  'webhookSecret',
  'secret',
  'password',
  'authorization',
  'apiKey',
  'jwt',
];

const redactPaths = SECRET_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`, `headers.${k}`, `req.headers.${k}`]);

/** GitHub tokens (ghs_, ghp_, gho_, ghu_, ghr_, github_pat_), JWTs and PEM blocks. */
const TOKEN_PATTERNS = [
  /\b(gh[opsur]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})\b/g,
  /\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\b/g,
  /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g,
  /x-access-token:[^@\s]+@/g,
];

/** Replaces anything that looks like a credential with [REDACTED]. */
export function scrubSecrets(text: string, extraSecrets: readonly string[] = []): string {
  let out = text;
  for (const re of TOKEN_PATTERNS) out = out.replace(re, '[REDACTED]');
  for (const s of extraSecrets) if (s && s.length >= 4) out = out.split(s).join('[REDACTED]');
  return out;
}

/**
 * Errors from @octokit/webhooks carry the whole event (payload included), and Octokit's carry the
 * request (headers included): keep what explains the error, drop what it happens to hold.
 */
function serializeError(err: Error): Record<string, unknown> {
  const out = stdSerializers.err(err) as Record<string, unknown>;
  for (const key of ['event', 'request', 'response', 'headers']) delete out[key];
  return out;
}

export function createLogger(level = process.env.LOG_LEVEL || 'info', destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      redact: { paths: redactPaths, censor: '[REDACTED]' },
      serializers: { err: serializeError },
      hooks: {
        logMethod(args, method) {
          method.apply(
            this,
            args.map((a) => (typeof a === 'string' ? scrubSecrets(a) : a)) as Parameters<typeof method>,
          );
        },
      },
    },
    destination,
  );
}

export type { Logger };
