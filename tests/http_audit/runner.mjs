// graphql-http's server audits (GraphQL over HTTP, https://graphql.github.io/graphql-over-http/)
// against a running server: `node runner.mjs URL`. A bearer token in CITYEXCHANGE_AUDIT_TOKEN is
// sent with every request. Prints one JSON line per audit that is not "ok" and a summary line;
// exits 1 if any audit is not "ok" (errors, warnings and notices alike).
import { auditServer } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node runner.mjs URL');
  process.exit(2);
}
const token = process.env.CITYEXCHANGE_AUDIT_TOKEN;

function fetchWithToken(input, init = {}) {
  const headers = new Headers(init.headers);
  if (token) headers.set('authorization', `Bearer ${token}`);
  return fetch(input, { ...init, headers });
}

const results = await auditServer({ url, fetchFn: fetchWithToken });
const counts = { ok: 0, notice: 0, warn: 0, error: 0 };
for (const result of results) {
  counts[result.status] += 1;
  if (result.status !== 'ok') {
    const body = await result.response.text().catch(() => '');
    console.log(JSON.stringify({
      id: result.id, status: result.status, name: result.name, reason: result.reason,
      httpStatus: result.response.status, contentType: result.response.headers.get('content-type'),
      body: body.slice(0, 300),
    }));
  }
}
console.log(JSON.stringify({ summary: counts, audits: results.length }));
process.exit(counts.error + counts.warn + counts.notice === 0 ? 0 : 1);
