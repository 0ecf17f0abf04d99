// Prisma config for the compatibility tests (copied into every temporary project next to
// prisma/schema.prisma). `engine: "js"` runs Prisma Migrate's WebAssembly schema engine through
// the better-sqlite3 driver adapter, so `migrate deploy/status/resolve --applied` need no native
// engine download. DATABASE_URL is read from the environment (`file:/abs/path.db`).
// SQLITE_TIMESTAMP_FORMAT (optional): how the adapter writes DateTime values, `iso8601` (the
// adapter's default) or `unixepoch-ms` (what the native schema engine writes).
import path from 'node:path'
import { defineConfig } from 'prisma/config'
import { PrismaBetterSQLite3 } from '@prisma/adapter-better-sqlite3'

const timestampFormat = process.env.SQLITE_TIMESTAMP_FORMAT as 'iso8601' | 'unixepoch-ms' | undefined

export default defineConfig({
  experimental: { adapter: true },
  engine: 'js',
  schema: path.join('prisma', 'schema.prisma'),
  async adapter() {
    const url = process.env.DATABASE_URL
    if (!url) {
      throw new Error('DATABASE_URL is not set (expected file:/path/to/db.sqlite)')
    }
    return new PrismaBetterSQLite3({ url }, timestampFormat ? { timestampFormat } : undefined)
  },
})
