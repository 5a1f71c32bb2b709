import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { dataSourceOptions } from './data-source-options.js';

/**
 * The data source for TypeORM's own CLI (`typeorm -d dist/database/data-source.js …`), used by
 * `npm run migration:check` (schema drift check). It reads DATABASE_URL only: the CLI is pointed at
 * a database on purpose, never at the embedded development one.
 */
const url = process.env.DATABASE_URL;
if (!url) throw new Error('Set DATABASE_URL to the database the TypeORM CLI should use.');

export default new DataSource(dataSourceOptions(url));
