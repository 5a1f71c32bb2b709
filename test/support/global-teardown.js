/** Stops the embedded PostgreSQL started by global-setup.js (its data folder is deleted). */
export default async function globalTeardown() {
  await globalThis.embeddedPostgres?.stop();
}
