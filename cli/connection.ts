// A command's session with Temporal: connected with the server's settings (operator/connect.ts, loaded on
// first use so that `--help` stays instant), closed whatever happens.
import type { OperatorConnection } from '../operator/connect.ts';
import type { Output } from './output.ts';

export async function withTemporal<T>(out: Output, work: (conn: OperatorConnection) => Promise<T>): Promise<T> {
  const { connectOperator } = await import('../operator/connect.ts');
  const conn = await out.spin('Connecting to Temporal', () => connectOperator());
  try {
    return await work(conn);
  } finally {
    await conn.close();
  }
}
