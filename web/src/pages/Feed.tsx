import { useEffect, useMemo, useState } from "preact/hooks";
import type { Session } from "../auth";
import { nodes, useQuery, type Connection } from "../data";
import { format, useTexts } from "../i18n";
import { LiveSubscription, type ConnectionState } from "../live";
import { EVENTS, PROBLEMS, VIEWER, VIEWER_EVENTS } from "../queries";
import { HAZARDS, SECTORS, URGENCIES, type Hazard, type Sector, type Urgency } from "../taxonomy";
import { Checkboxes } from "../components/Checkboxes";
import { Pending } from "../components/Status";
import type { Messages } from "../messages/en";

type Filters = {
  hazards: Hazard[];
  sectors: Sector[];
  urgency: Urgency[];
  cities: string;
  peers: boolean;
  following: boolean;
};

type Subject =
  | { __typename: "Problem"; id: string; title: string }
  | { __typename: "Solution"; id: string; title: string }
  | {
      __typename: "Comment";
      id: string;
      body: string | null;
      subject: { __typename: "Problem" | "Solution"; id: string; title: string } | null;
    };

export type FeedEvent = {
  id: string;
  cursor: string;
  type: keyof Messages["eventType"];
  occurredAt: string;
  urgency: Urgency | null;
  city: { slug: string; name: string };
  actor: { name: string } | null;
  subject: Subject | null;
};

type Viewer = {
  viewer: { city: { slug: string; name: string; peers: Connection<{ slug: string; name: string }> } };
};

type Problems = {
  problems: Connection<{
    id: string;
    title: string;
    summary: string;
    urgency: Urgency;
    status: string;
    hazards: Hazard[];
    createdAt: string;
    city: { slug: string; name: string };
  }>;
};

const FILTERS_KEY = "cx.feed.filters";
const KEPT_EVENTS = 100;
const NO_FILTERS: Filters = {
  hazards: [],
  sectors: [],
  urgency: [],
  cities: "",
  peers: false,
  following: false,
};

function savedFilters(): Filters {
  try {
    return { ...NO_FILTERS, ...JSON.parse(localStorage.getItem(FILTERS_KEY) || "{}") };
  } catch {
    return NO_FILTERS;
  }
}

function citySlugs(filters: Filters, peers: string[]): string[] | null {
  const named = filters.cities
    .split(",")
    .map((slug) => slug.trim().toLowerCase())
    .filter(Boolean);
  const all = [...new Set([...named, ...(filters.peers ? peers : [])])];
  return all.length ? all : null;
}

/** The EventFilter (and ProblemFilter: the same fields) the filters ask for. */
function filterOf(filters: Filters, peers: string[]): Record<string, unknown> | null {
  const filter: Record<string, unknown> = {};
  if (filters.hazards.length) filter.hazards = filters.hazards;
  if (filters.sectors.length) filter.sectors = filters.sectors;
  if (filters.urgency.length) filter.urgency = filters.urgency;
  const cities = citySlugs(filters, peers);
  if (cities) filter.cities = cities;
  return Object.keys(filter).length ? filter : null;
}

function subjectLink(subject: Subject | null): { href: string; title: string } | null {
  if (!subject) return null;
  if (subject.__typename === "Comment") {
    const parent = subject.subject;
    if (!parent) return null;
    const kind = parent.__typename === "Problem" ? "problems" : "solutions";
    return { href: `/app/${kind}/${encodeURIComponent(parent.id)}`, title: parent.title };
  }
  const kind = subject.__typename === "Problem" ? "problems" : "solutions";
  return { href: `/app/${kind}/${encodeURIComponent(subject.id)}`, title: subject.title };
}

export function EventItem({ event }: { event: FeedEvent }) {
  const { t, language } = useTexts();
  const link = subjectLink(event.subject);
  const when = new Date(event.occurredAt);
  return (
    <li class={event.urgency === "ACTIVE_CRISIS" ? "event crisis" : "event"}>
      <time dateTime={event.occurredAt}>
        {when.toLocaleString(language, { dateStyle: "short", timeStyle: "short" })}
      </time>{" "}
      <strong>{event.city.name}</strong> {t.eventType[event.type] ?? event.type}
      {link && (
        <>
          {": "}
          <a href={link.href}>{link.title}</a>
        </>
      )}
      {event.urgency === "ACTIVE_CRISIS" && <span class="badge crisis">{t.urgency.ACTIVE_CRISIS}</span>}
    </li>
  );
}

export function FeedPage({ session }: { session: Session }) {
  const { t } = useTexts();
  const [draft, setDraft] = useState<Filters>(savedFilters);
  const [applied, setApplied] = useState<Filters>(savedFilters);
  const [viewer] = useQuery<Viewer>(VIEWER, {}, session.city);
  const peers =
    viewer.state === "done" ? nodes(viewer.data.viewer.city.peers).map((city) => city.slug) : [];
  const filter = filterOf(applied, peers);
  const key = JSON.stringify({
    city: session.city,
    subject: session.subject,
    following: applied.following,
    filter,
  });
  const storageKey = `cx.feed.${key}`;

  const [events, setEvents] = useState<FeedEvent[]>([]);
  const [latest, setLatest] = useState(""); // told to screen readers as it arrives
  const [state, setState] = useState<{ state: ConnectionState; detail?: string }>({
    state: "connecting",
  });

  const problemFilter = useMemo(() => filter, [key]);
  const [problems, reloadProblems] = useQuery<Problems>(
    PROBLEMS,
    { filter: problemFilter },
    key,
  );

  const waitForPeers = applied.peers && viewer.state === "loading";
  // "Only our peer cities" with none known must not widen to every city.
  const noPeers = applied.peers && !applied.following && viewer.state !== "loading" && !peers.length;
  useEffect(() => {
    if (waitForPeers || noPeers) return;
    // What this tab showed before a reload, and the cursor to resume from.
    const kept = JSON.parse(sessionStorage.getItem(storageKey) || "null") as {
      events: FeedEvent[];
      cursor: string | null;
    } | null;
    let shown = kept?.events ?? [];
    setEvents(shown);
    const live = new LiveSubscription<FeedEvent>({
      query: applied.following ? VIEWER_EVENTS : EVENTS,
      field: applied.following ? "viewerEvents" : "events",
      variables: applied.following ? {} : { filter },
      after: kept?.cursor ?? null,
      onEvent: (event) => {
        if (!event.city || typeof event.type !== "string") return; // not an event we can show
        shown = [event, ...shown].slice(0, KEPT_EVENTS);
        setEvents(shown);
        sessionStorage.setItem(storageKey, JSON.stringify({ events: shown, cursor: event.cursor }));
        if (event.type === "PROBLEM_PUBLISHED") reloadProblems(); // it belongs in the list too
        setLatest(`${event.city.name} ${t.eventType[event.type] ?? event.type}`);
      },
      onState: (next, detail) => setState({ state: next, detail }),
      onCursorRefused: () => {
        shown = [];
        setEvents(shown);
        sessionStorage.removeItem(storageKey);
      },
    });
    live.start();
    return () => live.stop();
  }, [storageKey, waitForPeers, noPeers]);

  const apply = (event: Event) => {
    event.preventDefault();
    localStorage.setItem(FILTERS_KEY, JSON.stringify(draft));
    setApplied(draft);
  };

  return (
    <>
      <div class="page-head">
        <h1 tabIndex={-1}>{t.feed.title}</h1>
        <p class={`connection ${state.state}`} role="status" aria-live="polite">
          <span class="dot" aria-hidden="true" />
          <span class="visually-hidden">{t.connection.label}: </span>
          <span data-testid="connection-state" data-state={state.state}>
            {t.connection[state.state]}
          </span>
          {state.detail && <span class="muted"> · {state.detail}</span>}
        </p>
        {noPeers && (
          <p role="alert" class="error">
            {t.feed.noPeers}
          </p>
        )}
      </div>
      <details class="filters">
        <summary>{t.feed.filters}</summary>
        <form onSubmit={apply}>
          <label class="inline">
            <input
              type="checkbox"
              checked={draft.following}
              onChange={(event) => setDraft({ ...draft, following: event.currentTarget.checked })}
            />{" "}
            {t.feed.following}
          </label>
          <fieldset disabled={draft.following} class="plain">
            <Checkboxes
              legend={t.feed.urgency}
              values={URGENCIES}
              chosen={draft.urgency}
              label={(value) => t.urgency[value]}
              onChange={(urgency) => setDraft({ ...draft, urgency })}
            />
            <Checkboxes
              legend={t.feed.hazards}
              values={HAZARDS}
              chosen={draft.hazards}
              label={(value) => t.hazard[value]}
              onChange={(hazards) => setDraft({ ...draft, hazards })}
            />
            <Checkboxes
              legend={t.feed.sectors}
              values={SECTORS}
              chosen={draft.sectors}
              label={(value) => t.sector[value]}
              onChange={(sectors) => setDraft({ ...draft, sectors })}
            />
            <label for="filter-cities">{t.feed.cities}</label>
            <input
              id="filter-cities"
              type="text"
              value={draft.cities}
              autocomplete="off"
              onInput={(event) => setDraft({ ...draft, cities: event.currentTarget.value })}
            />
            <label class="inline">
              <input
                type="checkbox"
                checked={draft.peers}
                onChange={(event) => setDraft({ ...draft, peers: event.currentTarget.checked })}
              />{" "}
              {t.feed.peerCities}
            </label>
          </fieldset>
          <div class="actions">
            <button type="submit">{t.feed.apply}</button>
            <button type="button" class="secondary" onClick={() => setDraft(NO_FILTERS)}>
              {t.feed.clear}
            </button>
          </div>
        </form>
      </details>
      <div class="columns">
        <section aria-labelledby="live-heading">
          <h2 id="live-heading">{t.feed.liveEvents}</h2>
          {events.length === 0 ? (
            <p class="muted">{t.feed.waiting}</p>
          ) : (
            <ol class="events" data-testid="events">
              {events.map((event) => (
                <EventItem event={event} key={event.id} />
              ))}
            </ol>
          )}
        </section>
        <section aria-labelledby="problems-heading">
          <h2 id="problems-heading">{t.feed.recentProblems}</h2>
          <Pending loaded={problems} retry={reloadProblems} />
          {problems.state === "done" &&
            (nodes(problems.data.problems).length === 0 ? (
              <p class="muted">{t.feed.noProblems}</p>
            ) : (
              <ul class="cards">
                {nodes(problems.data.problems).map((problem) => (
                  <li key={problem.id} class="card">
                    <a href={`/app/problems/${encodeURIComponent(problem.id)}`}>{problem.title}</a>
                    <div class="muted">
                      {problem.city.name} · {t.urgency[problem.urgency]}
                    </div>
                    <p>{problem.summary}</p>
                  </li>
                ))}
              </ul>
            ))}
        </section>
      </div>
      <p class="visually-hidden" aria-live="polite">
        {latest ? format(t.feed.newEvents, { event: latest }) : ""}
      </p>
    </>
  );
}
