// Times as people read them in a terminal or an agent's answer.

/** "just now", "5 minutes ago", "2 hours ago", "3 days ago"; the date beyond 30 days; ISO for the future. */
export function relativeTime(when: Date, now: Date = new Date()): string {
  const seconds = Math.round((now.getTime() - when.getTime()) / 1000);
  if (seconds < 0) return when.toISOString().replace(/\.\d+Z$/, 'Z');
  if (seconds < 45) return 'just now';
  if (seconds >= 30 * 86_400) return when.toISOString().slice(0, 10);
  const [size, unit] = seconds < 3600 ? [60, 'minute'] : seconds < 86_400 ? [3600, 'hour'] : [86_400, 'day'];
  const n = Math.max(1, Math.round(seconds / size));
  return `${n} ${unit}${n === 1 ? '' : 's'} ago`;
}
