// `drift.schedule`: a 5-field cron expression (minute hour day-of-month month day-of-week), the form Temporal
// schedules take. cron-parser judges each field; this names the field and says what is wrong in our words.
import { CronExpressionParser } from 'cron-parser';
import { quote } from './errors.ts';

const FIELDS = [
  { name: 'minute', range: '0-59' },
  { name: 'hour', range: '0-23' },
  { name: 'day of month', range: '1-31' },
  { name: 'month', range: '1-12' },
  // 7 is Sunday as well as 0, as in most crons.
  { name: 'day of week', range: '0-7' },
];

export const CRON_EXPECTED = 'must be a 5-field cron expression (minute hour day-of-month month day-of-week)';

/** Numbers, `*`, ranges, steps, lists and three-letter names only: no seconds, `H`, `L`, `W`, `#` or `?`. */
const PLAIN_FIELD = /^(?:[\d*,/-]|[A-Za-z]{3})+$/;

/** Why `expr` is not a schedule, or undefined when it is one. */
export function cronProblem(expr: string): string | undefined {
  const parts = expr.trim().split(/\s+/).filter(Boolean);
  if (parts.length !== 5) return `${CRON_EXPECTED}, got ${quote(expr)} (${parts.length} fields)`;
  if (parts.every((p) => PLAIN_FIELD.test(p)) && parses(parts.join(' '))) return undefined;
  // Only now field by field, to say which one is wrong.
  for (const [i, text] of parts.entries()) {
    const problem = fieldProblem(text, i);
    if (problem) return `${CRON_EXPECTED}, got ${quote(expr)}: ${FIELDS[i].name} ${problem}`;
  }
  return undefined;
}

function parses(expr: string): boolean {
  try {
    CronExpressionParser.parse(expr);
    return true;
  } catch {
    return false;
  }
}

function fieldProblem(text: string, index: number): string | undefined {
  const { range } = FIELDS[index];
  if (!PLAIN_FIELD.test(text)) return `${quote(text)} is not a number, range, step, list or name`;
  try {
    // Every other field `*`, so an error can only be this field's.
    CronExpressionParser.parse(FIELDS.map((_, j) => (j === index ? text : '*')).join(' '));
    return undefined;
  } catch (err) {
    const message = (err as Error).message;
    const outOfRange = /got value (\S+) expected range/.exec(message);
    if (outOfRange) return `${quote(outOfRange[1])} is not in ${range}`;
    const name = /cannot resolve alias "(\w+)"/.exec(message);
    if (name) return `${quote(text.match(new RegExp(name[1], 'i'))?.[0] ?? name[1])} is not in ${range}`;
    const backwards = /Invalid range: ([^,]+),/.exec(message);
    if (backwards) return `range ${quote(backwards[1])} runs backwards`;
    return `${quote(text)} is not valid`;
  }
}
