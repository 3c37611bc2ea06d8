// Validates 5-field cron expressions (minute hour day-of-month month day-of-week), the form Temporal
// schedules accept. Only validation: the drift scheduler interprets them.
import { quote } from './errors.ts';
import { invalid, type Invalid } from './yaml-checks.ts';

interface Field {
  name: string;
  min: number;
  max: number;
  names?: string[];
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

const FIELDS: Field[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: MONTHS },
  // 7 is Sunday as well as 0, as in most crons.
  { name: 'day of week', min: 0, max: 7, names: DAYS },
];

function parseValue(text: string, field: Field): number | undefined {
  if (/^\d+$/.test(text)) return Number(text);
  const named = field.names?.indexOf(text.toLowerCase()) ?? -1;
  if (named < 0) return undefined;
  return field.name === 'month' ? named + 1 : named;
}

/** Undefined when `part` (one comma-separated piece) is valid for `field`, else why not. */
function partProblem(part: string, field: Field): string | undefined {
  const [range, step, ...rest] = part.split('/');
  if (rest.length > 0 || (step !== undefined && !/^[1-9]\d*$/.test(step))) return `bad step in "${part}"`;
  if (range === '*') return undefined;
  const bounds = range.split('-');
  if (bounds.length > 2) return `bad range "${range}"`;
  const values = bounds.map((b) => parseValue(b, field));
  for (const [i, v] of values.entries()) {
    if (v === undefined || v < field.min || v > field.max) return `"${bounds[i]}" is not in ${field.min}-${field.max}`;
  }
  if (values.length === 2 && values[0]! > values[1]!) return `range "${range}" runs backwards`;
  return undefined;
}

export function checkCron(expr: string): string | Invalid {
  const parts = expr.trim().split(/\s+/);
  const expected = 'must be a 5-field cron expression (minute hour day-of-month month day-of-week)';
  if (parts.length !== 5) return invalid(`${expected}, got ${quote(expr)} (${parts.filter(Boolean).length} fields)`);
  for (const [i, text] of parts.entries()) {
    for (const piece of text.split(',')) {
      const problem = partProblem(piece, FIELDS[i]);
      if (problem) return invalid(`${expected}, got ${quote(expr)}: ${FIELDS[i].name} ${problem}`);
    }
  }
  return expr.trim();
}
