// One live subscription over graphql-transport-ws (the protocol graphql-ws defines) that
// survives the network: after a drop, a server restart or a laptop's sleep it connects again
// and subscribes with `after` = the last event's cursor, so the missed events come first and
// none twice (the server's contract; events already shown are skipped by id as well).
//
// A sleeping laptop's socket can look open for minutes: the client pings every PING_MS and
// treats a missing pong as a drop. Close code 4403 (token expired or revoked) refreshes the
// session before connecting again.

import { freshSession, SignedOut } from "./auth";

export type ConnectionState = "connecting" | "live" | "reconnecting" | "offline" | "signed-out";

export type LiveOptions<E> = {
  query: string;
  variables: Record<string, unknown>;
  field: string; // the subscription's root field: "events" or "viewerEvents"
  after: string | null;
  onEvent: (event: E) => void;
  onState: (state: ConnectionState, detail?: string) => void;
};

const PING_MS = 15_000;
const PONG_WAIT_MS = 10_000;
const MAX_BACKOFF_MS = 30_000;
const SEEN_MAX = 500;

export class LiveSubscription<E extends { id: string; cursor: string }> {
  private socket: WebSocket | null = null;
  private after: string | null;
  private attempt = 0;
  private stopped = false;
  private timers: number[] = [];
  private seen: string[] = [];
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
    this.clearTimers();
    this.socket?.close(1000, "done");
    this.socket = null;
  }

  get cursor(): string | null {
    return this.after;
  }

  private clearTimers(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers = [];
  }

  private later(ms: number, work: () => void): void {
    this.timers.push(window.setTimeout(work, ms));
  }

  private reconnectNow(): void {
    if (this.stopped || document.visibilityState === "hidden") return;
    if (this.socket && this.socket.readyState <= WebSocket.OPEN) {
      this.ping(); // maybe alive: a missing pong will tell
      return;
    }
    this.clearTimers();
    this.attempt = 0;
    void this.connect();
  }

  private async connect(forceRefresh = false): Promise<void> {
    if (this.stopped) return;
    this.options.onState(this.attempt === 0 ? "connecting" : "reconnecting");
    let token: string;
    try {
      token = (await freshSession(forceRefresh)).accessToken;
    } catch (error) {
      if (error instanceof SignedOut) {
        this.options.onState("signed-out");
        return;
      }
      this.retry(); // offline: the token endpoint is unreachable too
      return;
    }
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}/graphql`, "graphql-transport-ws");
    this.socket = socket;
    socket.onopen = () => {
      socket.send(
        JSON.stringify({ type: "connection_init", payload: { Authorization: `Bearer ${token}` } }),
      );
    };
    socket.onmessage = (message) => this.receive(socket, String(message.data));
    socket.onclose = (close) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.clearTimers();
      if (this.stopped) return;
      if (close.code === 4403 || close.code === 4401) {
        this.attempt += 1;
        void this.connect(true);
        return;
      }
      this.retry(close.reason || undefined);
    };
  }

  private retry(detail?: string): void {
    this.attempt += 1;
    const ceiling = Math.min(MAX_BACKOFF_MS, 500 * 2 ** Math.min(this.attempt, 6));
    this.options.onState(navigator.onLine ? "reconnecting" : "offline", detail);
    this.later(ceiling / 2 + Math.random() * (ceiling / 2), () => void this.connect());
  }

  private ping(): void {
    const socket = this.socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    socket.send(JSON.stringify({ type: "ping" }));
    this.later(PONG_WAIT_MS, () => {
      if (this.socket === socket) socket.close(4408, "no pong");
    });
  }

  private keepAlive(socket: WebSocket): void {
    this.later(PING_MS, () => {
      if (this.socket !== socket) return;
      this.ping();
      this.keepAlive(socket);
    });
  }

  private receive(socket: WebSocket, text: string): void {
    let message: { type: string; id?: string; payload?: any };
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    switch (message.type) {
      case "connection_ack":
        this.attempt = 0;
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
        break;
      case "ping":
        socket.send(JSON.stringify({ type: "pong" }));
        break;
      case "pong":
        this.clearTimers();
        this.keepAlive(socket);
        break;
      case "next": {
        const event = message.payload?.data?.[this.options.field] as E | undefined;
        if (!event) {
          const error = message.payload?.errors?.[0]?.message;
          if (error) this.options.onState("live", error);
          return;
        }
        this.after = event.cursor;
        if (this.seen.includes(event.id)) return;
        this.seen.push(event.id);
        if (this.seen.length > SEEN_MAX) this.seen.shift();
        this.options.onEvent(event);
        break;
      }
      case "error":
        this.options.onState("live", message.payload?.[0]?.message ?? "subscription refused");
        break;
      case "complete":
        socket.close(1000, "completed"); // the server ended it: connect and resume
        break;
    }
  }
}
