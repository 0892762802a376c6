import type { Dialect } from './dialect.js';
import { MysqlDialect } from './mysql.js';
import { PostgresDialect } from './postgres.js';

/** Opens the dialect the URL's scheme names: postgres(ql):// or mysql:// / mariadb://. */
export async function connectDialect(url: string): Promise<Dialect> {
  return /^postgres(ql)?:/.test(url) ? PostgresDialect.connect(url) : MysqlDialect.connect(url);
}
