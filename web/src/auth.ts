// Sign-in through the city's own realm: OAuth 2.0 authorization code with PKCE (RFC 7636,
// S256) as a public client (RFC 9700 §2.1.1), refresh tokens that rotate on every use, and
// sign-out that revokes (RFC 7009). The realm's endpoints are on this origin:
// /realms/{city}/authorize, /token, /revoke (see docs/web-app.md).
//
// The session lives in localStorage so every tab shares one refresh-token family: a refresh
// runs under a Web Lock and re-reads the stored session first, so two tabs never present the
// same (already rotated) refresh token, which the realm treats as theft and ends the family.

export type Realm = {
  slug: string;
  name: string;
  country: string;
  issuer: string;
  clientId: string;
};

export type Session = {
  city: string;
  cityName: string;
  subject: string; // the access token's `sub`: whose feed this tab keeps
  clientId: string;
  accessToken: string;
  refreshToken: string | null;
  expiresAt: number; // ms since the epoch
  scope: string;
};

const SESSION_KEY = "cx.session";
const PENDING_KEY = "cx.pending"; // the sign-in under way in this tab
const SCOPES = "read publish comment";
const REFRESH_MARGIN_MS = 60_000;
const CHANGED = "cx.session-changed"; // this tab's own changes (`storage` tells of others')
export const CALLBACK_PATH = "/app/signed-in";

export class SignedOut extends Error {}

export async function realms(): Promise<Realm[]> {
  const response = await fetch("/app/realms.json", { headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(`the member cities could not be read (${response.status})`);
  return (await response.json()) as Realm[];
}

function base64url(bytes: Uint8Array): string {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomText(bytes = 32): string {
  return base64url(crypto.getRandomValues(new Uint8Array(bytes)));
}

async function challengeOf(verifier: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

function redirectUri(): string {
  return `${location.origin}${CALLBACK_PATH}`;
}

/** Go to the realm's sign-in page; it comes back to CALLBACK_PATH. */
export async function signIn(realm: Realm, returnTo: string): Promise<void> {
  const verifier = randomText();
  const state = randomText(16);
  sessionStorage.setItem(
    PENDING_KEY,
    JSON.stringify({
      city: realm.slug,
      cityName: realm.name,
      clientId: realm.clientId,
      verifier,
      state,
      returnTo,
    }),
  );
  const query = new URLSearchParams({
    response_type: "code",
    client_id: realm.clientId,
    redirect_uri: redirectUri(),
    scope: SCOPES,
    state,
    code_challenge: await challengeOf(verifier),
    code_challenge_method: "S256",
  });
  location.assign(`/realms/${encodeURIComponent(realm.slug)}/authorize?${query}`);
}

type TokenResponse = {
  access_token: string;
  refresh_token?: string;
  expires_in: number;
  scope?: string;
};

async function tokenRequest(city: string, form: Record<string, string>): Promise<TokenResponse> {
  const response = await fetch(`/realms/${encodeURIComponent(city)}/token`, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" },
    body: new URLSearchParams(form),
  });
  const body = (await response.json().catch(() => ({}))) as Record<string, string>;
  if (!response.ok) {
    const error = new Error(body.error_description || body.error || `HTTP ${response.status}`);
    // invalid_grant: the refresh token is spent, expired or revoked; sign in again.
    throw response.status === 400 || response.status === 401 ? new SignedOut(error.message) : error;
  }
  return body as unknown as TokenResponse;
}

function store(
  realm: { city: string; cityName: string; clientId: string },
  token: TokenResponse,
  previous?: Session,
): Session {
  const session: Session = {
    ...realm,
    subject: subjectOf(token.access_token),
    accessToken: token.access_token,
    refreshToken: token.refresh_token ?? previous?.refreshToken ?? null,
    expiresAt: Date.now() + token.expires_in * 1000,
    scope: token.scope ?? previous?.scope ?? SCOPES,
  };
  localStorage.setItem(SESSION_KEY, JSON.stringify(session));
  dispatchEvent(new Event(CHANGED));
  return session;
}

function forget(): void {
  localStorage.removeItem(SESSION_KEY);
  forgetFeeds();
  dispatchEvent(new Event(CHANGED));
}

/** What this tab's feeds kept (events, cursors): never shown to the next person. */
function forgetFeeds(): void {
  for (const key of Object.keys(sessionStorage)) {
    if (key.startsWith("cx.feed.")) sessionStorage.removeItem(key);
  }
}

function subjectOf(accessToken: string): string {
  try {
    const payload = accessToken.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return String(JSON.parse(atob(payload)).sub ?? "");
  } catch {
    return "";
  }
}

/** The callback: trade the code for tokens; returns where the person was going. */
export async function completeSignIn(params: URLSearchParams): Promise<string> {
  const pending = JSON.parse(sessionStorage.getItem(PENDING_KEY) || "null") as {
    city: string;
    cityName: string;
    clientId: string;
    verifier: string;
    state: string;
    returnTo: string;
  } | null;
  sessionStorage.removeItem(PENDING_KEY);
  if (params.get("error")) {
    throw new Error(params.get("error_description") || params.get("error") || "sign-in failed");
  }
  if (!pending || params.get("state") !== pending.state) {
    throw new Error("this sign-in was not started here, or has been used: start again");
  }
  const token = await tokenRequest(pending.city, {
    grant_type: "authorization_code",
    code: params.get("code") || "",
    redirect_uri: redirectUri(),
    client_id: pending.clientId,
    code_verifier: pending.verifier,
  });
  forgetFeeds();
  store(pending, token);
  return pending.returnTo.startsWith("/app") ? pending.returnTo : "/app/";
}

export function currentSession(): Session | null {
  try {
    return JSON.parse(localStorage.getItem(SESSION_KEY) || "null") as Session | null;
  } catch {
    return null;
  }
}

async function withLock<T>(work: () => Promise<T>): Promise<T> {
  if ("locks" in navigator) return navigator.locks.request("cx.refresh", work);
  return work();
}

let refreshing: Promise<Session> | null = null;

/** A fresh session: the stored one, or one refreshed (once, across tabs) when it is near
 * its end or `force`d (the API refused the token). */
export function freshSession(force = false): Promise<Session> {
  const seen = currentSession();
  if (!seen) return Promise.reject(new SignedOut("not signed in"));
  if (!force && seen.expiresAt - Date.now() > REFRESH_MARGIN_MS) return Promise.resolve(seen);
  refreshing ??= withLock(async () => {
    const session = currentSession();
    if (!session) throw new SignedOut("not signed in"); // signed out meanwhile
    // Another tab refreshed while this one waited for the lock.
    if (session.accessToken !== seen.accessToken) return session;
    if (!session.refreshToken) throw new SignedOut("the session ended");
    try {
      const token = await tokenRequest(session.city, {
        grant_type: "refresh_token",
        refresh_token: session.refreshToken,
        client_id: session.clientId,
      });
      return store(session, token, session);
    } catch (error) {
      if (error instanceof SignedOut) forget();
      throw error;
    }
  }).finally(() => {
    refreshing = null;
  });
  return refreshing;
}

/** Revoke the refresh token (and with it the family's access tokens), then forget it. */
export async function signOut(): Promise<void> {
  // Under the refresh lock: a refresh under way in another tab must not store its session
  // again after this one is forgotten.
  const session = await withLock(async () => {
    const signedIn = currentSession();
    forget();
    return signedIn;
  });
  if (!session) return;
  const token = session.refreshToken ?? session.accessToken;
  await fetch(`/realms/${encodeURIComponent(session.city)}/revoke`, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      token,
      token_type_hint: session.refreshToken ? "refresh_token" : "access_token",
      client_id: session.clientId,
    }),
  }).catch(() => undefined); // offline: the token still expires; nothing here keeps it
}

/** Call `listener` when this tab or another signs in or out, or the session is refreshed. */
export function onSessionChange(listener: () => void): () => void {
  const handle = (event: Event) => {
    if (!(event instanceof StorageEvent) || event.key === SESSION_KEY || event.key === null) {
      listener();
    }
  };
  addEventListener("storage", handle);
  addEventListener(CHANGED, handle);
  return () => {
    removeEventListener("storage", handle);
    removeEventListener(CHANGED, handle);
  };
}
