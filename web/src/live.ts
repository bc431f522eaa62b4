// One live subscription over graphql-transport-ws (the protocol graphql-ws defines) that
// survives the network: after a drop, a server restart or a laptop's sleep it connects again
// and subscribes with `after` = the last event's cursor, so the missed events come first and
// none twice (the server's contract; events already shown are skipped by id as well).
//
// A sleeping laptop's socket can look open for minutes: the client pings every PING_MS and
// treats a missing pong as a drop. Close code 4403 (token expired or revoked) refreshes the
// session before connecting again.

import { freshSession, SignedOut } from "./auth";

export type ConnectionState =
  | "connecting"
  | "live"
  | "reconnecting"
  | "offline"
  | "refused" // the server refused the subscription itself (a filter it does not take)
  | "signed-out";

export type LiveOptions<E> = {
  query: string;
  variables: Record<string, unknown>;
  field: string; // the subscription's root field: "events" or "viewerEvents"
  after: string | null;
  onEvent: (event: E) => void;
  onState: (state: ConnectionState, detail?: string) => void;
  onCursorRefused?: () => void; // the server refused `after`: the feed starts afresh
};

const PING_MS = 15_000;
const PONG_WAIT_MS = 10_000;
const ACK_WAIT_MS = 10_000; // from opening the socket to connection_ack
const STABLE_MS = 30_000; // up this long (or an event): the next drop starts the backoff over
const MAX_BACKOFF_MS = 30_000;
const SEEN_MAX = 500;

type Timer = ReturnType<typeof setTimeout> | undefined;

export class LiveSubscription<E extends { id: string; cursor: string }> {
  private socket: WebSocket | null = null;
  private after: string | null;
  private attempt = 0;
  private stopped = false;
  private connecting = false; // waiting for a token: a second connect must not start
  private retryTimer: Timer;
  private pingTimer: Timer;
  private pongTimer: Timer;
  private ackTimer: Timer;
  private stableTimer: Timer;
  private seen: string[] = [];
  private refusal: string | null = null; // the error the server answered the subscribe with
  private readonly wake = () => this.reconnectNow();

  constructor(private readonly options: LiveOptions<E>) {
    this.after = options.after;
  }

  start(): void {
    addEventListener("online", this.wake);
    document.addEventListener("visibilitychange", this.wake);
    void this.connect();
  }

  stop(): void {
    this.stopped = true;
    removeEventListener("online", this.wake);
    document.removeEventListener("visibilitychange", this.wake);
    clearTimeout(this.retryTimer);
    this.detach(1000, "done");
  }

  get cursor(): string | null {
    return this.after;
  }

  /** Forget the current socket (closing it) and its timers; nothing it says counts now. */
  private detach(code: number, reason: string): void {
    for (const timer of [this.pingTimer, this.pongTimer, this.ackTimer, this.stableTimer]) {
      clearTimeout(timer);
    }
    const socket = this.socket;
    this.socket = null;
    if (!socket) return;
    socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
    if (socket.readyState <= WebSocket.OPEN) socket.close(code, reason);
  }

  private reconnectNow(): void {
    if (this.stopped || this.connecting || document.visibilityState === "hidden") return;
    if (this.socket?.readyState === WebSocket.OPEN) {
      this.ping(); // maybe alive: a missing pong will tell
      return;
    }
    if (this.socket?.readyState === WebSocket.CONNECTING) return; // its ack deadline runs
    clearTimeout(this.retryTimer);
    this.attempt = 0;
    void this.connect();
  }

  private async connect(forceRefresh = false): Promise<void> {
    if (this.stopped || this.connecting) return;
    this.connecting = true;
    this.options.onState(this.attempt === 0 ? "connecting" : "reconnecting");
    let token: string;
    try {
      token = (await freshSession(forceRefresh)).accessToken;
    } catch (error) {
      this.connecting = false;
      if (error instanceof SignedOut) {
        this.options.onState("signed-out");
      } else {
        this.retry(); // offline: the token endpoint is unreachable too
      }
      return;
    }
    this.connecting = false;
    if (this.stopped) return; // stopped while the token came
    this.detach(1000, "replaced");
    this.refusal = null;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}/graphql`, "graphql-transport-ws");
    this.socket = socket;
    this.ackTimer = setTimeout(() => this.drop("no answer"), ACK_WAIT_MS);
    socket.onopen = () => {
      socket.send(
        JSON.stringify({ type: "connection_init", payload: { Authorization: `Bearer ${token}` } }),
      );
    };
    socket.onmessage = (message) => this.receive(socket, String(message.data));
    socket.onclose = (close) => {
      if (this.socket !== socket) return;
      this.detach(1000, "closed");
      // 4403: the token expired or was revoked; refresh it before the next try.
      this.retry(close.reason || undefined, close.code === 4403 || close.code === 4401);
    };
  }

  /** Give up on the current socket now (no pong, no ack) and try again after a backoff. */
  private drop(reason: string): void {
    if (this.stopped) return;
    this.detach(4408, reason);
    this.retry(reason);
  }

  private retry(detail?: string, refresh = false): void {
    if (this.stopped) return;
    this.attempt += 1;
    const ceiling = Math.min(MAX_BACKOFF_MS, 500 * 2 ** Math.min(this.attempt, 6));
    this.options.onState(navigator.onLine ? "reconnecting" : "offline", detail);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(
      () => void this.connect(refresh),
      ceiling / 2 + Math.random() * (ceiling / 2),
    );
  }

  /** The server refused the subscription. A cursor it no longer takes starts the feed
   * afresh; any other refusal (a filter it does not take) is shown, and nothing is tried
   * again until the filter changes (a new subscription). */
  private refused(): void {
    const said = this.refusal ?? "";
    this.refusal = null;
    this.detach(1000, "refused");
    if (said.includes('"after"') && this.after !== null) {
      this.after = null;
      this.options.onCursorRefused?.();
      this.retry();
      return;
    }
    let detail: string | undefined;
    try {
      const parsed = JSON.parse(said);
      detail = (Array.isArray(parsed) ? parsed[0] : parsed)?.message;
    } catch {
      detail = undefined;
    }
    this.options.onState("refused", typeof detail === "string" ? detail : undefined);
  }

  private ping(): void {
    const socket = this.socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    socket.send(JSON.stringify({ type: "ping" }));
    clearTimeout(this.pongTimer);
    this.pongTimer = setTimeout(() => this.socket === socket && this.drop("no pong"), PONG_WAIT_MS);
  }

  private keepAlive(socket: WebSocket): void {
    clearTimeout(this.pingTimer);
    this.pingTimer = setTimeout(() => {
      if (this.socket !== socket) return;
      this.ping();
      this.keepAlive(socket);
    }, PING_MS);
  }

  private receive(socket: WebSocket, text: string): void {
    if (this.socket !== socket) return;
    let message: { type?: unknown; id?: string; payload?: any };
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    if (!message || typeof message !== "object") return;
    switch (message.type) {
      case "connection_ack":
        clearTimeout(this.ackTimer);
        this.options.onState("live");
        socket.send(
          JSON.stringify({
            id: "feed",
            type: "subscribe",
            payload: {
              query: this.options.query,
              variables: { ...this.options.variables, after: this.after },
            },
          }),
        );
        this.keepAlive(socket);
        this.stableTimer = setTimeout(() => (this.attempt = 0), STABLE_MS);
        break;
      case "ping":
        socket.send(JSON.stringify({ type: "pong" }));
        break;
      case "pong":
        clearTimeout(this.pongTimer);
        break;
      case "next": {
        const event = message.payload?.data?.[this.options.field] as E | undefined;
        if (!event || typeof event.id !== "string" || typeof event.cursor !== "string") {
          const error = message.payload?.errors?.[0];
          if (error) this.refusal = JSON.stringify(error);
          if (typeof error?.message === "string") this.options.onState("live", error.message);
          return;
        }
        this.attempt = 0;
        this.after = event.cursor;
        if (this.seen.includes(event.id)) return;
        this.seen.push(event.id);
        if (this.seen.length > SEEN_MAX) this.seen.shift();
        this.options.onEvent(event);
        break;
      }
      case "error":
        // graphql-transport-ws: the operation ended refused (its errors are the payload).
        this.refusal = JSON.stringify(message.payload ?? "refused");
        this.refused();
        break;
      case "complete":
        if (this.refusal) this.refused(); // errors, then the end: the server took no part
        else {
          this.detach(1000, "completed"); // the server ended it: connect and resume
          this.retry();
        }
        break;
    }
  }
}
