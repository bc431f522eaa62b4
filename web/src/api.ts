// GraphQL over HTTP to /graphql, with the session's bearer token; a token the API refuses
// is refreshed once and the request sent again.

import { freshSession, SignedOut } from "./auth";

export type UserError = { field: string[] | null; message: string; code?: string };

export class ApiError extends Error {
  constructor(
    message: string,
    readonly code: string | null,
  ) {
    super(message);
  }
}

type Body<T> = { data?: T | null; errors?: { message: string; extensions?: { code?: string } }[] };

function post(query: string, variables: object, token: string): Promise<Response> {
  return fetch("/graphql", {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      Accept: "application/graphql-response+json, application/json",
      Authorization: `Bearer ${token}`,
    },
    body: JSON.stringify({ query, variables }),
  });
}

/** The `data` of an operation; an ApiError for any error (the first one's message). */
export async function gql<T>(query: string, variables: object = {}): Promise<T> {
  let session = await freshSession();
  let response = await post(query, variables, session.accessToken);
  if (response.status === 401) {
    session = await freshSession(true);
    response = await post(query, variables, session.accessToken);
    if (response.status === 401) throw new SignedOut("the API refused the session");
  }
  const body = (await response.json().catch(() => ({}))) as Body<T>;
  const first = body.errors?.[0];
  if (first || body.data == null) {
    throw new ApiError(first?.message ?? `HTTP ${response.status}`, first?.extensions?.code ?? null);
  }
  return body.data;
}

/** Errors of a payload's userErrors by the input field they name ("title", "hazards"...). */
export function errorsByField(errors: UserError[]): Map<string, string> {
  const byField = new Map<string, string>();
  for (const error of errors) {
    const field = error.field?.[error.field[0] === "input" ? 1 : 0] ?? "";
    if (!byField.has(field)) byField.set(field, error.message);
  }
  return byField;
}

export function newMutationId(): string {
  return crypto.randomUUID();
}
