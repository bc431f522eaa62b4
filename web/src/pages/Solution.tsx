import { nodes, useQuery, type Connection } from "../data";
import { format, money, useTexts } from "../i18n";
import { SOLUTION } from "../queries";
import type { Hazard, Sector } from "../taxonomy";
import { Comments, type CommentData } from "../components/Comments";
import { Lineage, type LineageData } from "../components/Lineage";
import { SuggestionList, type Suggested } from "../components/Reasons";
import { Pending } from "../components/Status";
import { ThreadList } from "../components/ThreadList";
import type { Messages } from "../messages/en";
import { NotFound } from "./NotFound";
import { Facts, Prose } from "./Problem";

type SolutionData = {
  __typename: "Solution";
  id: string;
  title: string;
  summary: string;
  body: string | null;
  status: keyof Messages["solutionStatus"];
  hazards: Hazard[];
  sectors: Sector[];
  tags: string[];
  startedOn: string | null;
  completedOn: string | null;
  cost: { amount: number; currency: string; year: number; eur: number | null } | null;
  costPerResidentEur: number | null;
  residentsServed: number | null;
  outcomes: { metric: string; value: number; unit: string | null; note: string | null }[];
  successFactors: string[];
  limitingFactors: string[];
  transferability: { prerequisites: string[]; context: string | null; doDifferently: string | null } | null;
  evidence: { level: number; links: { url: string; title: string | null }[] } | null;
  adaptationNotes: string | null;
  partners: string[];
  fundingSources: string[];
  city: { slug: string; name: string };
  problems: { id: string; title: string; city: { name: string } }[];
  lineage: LineageData;
  adoptionSummary: { text: string };
  adoptions: Connection<{
    id: string;
    stage: keyof Messages["adoptionStage"];
    city: { name: string };
    updatedAt: string;
  }>;
  outcomeReports: Connection<{
    metric: string;
    value: number;
    unit: string | null;
    baseline: number | null;
    target: number | null;
    measuredOn: string;
    city: { name: string };
  }>;
  similarSolutions: { edges: Suggested[] };
  comments: Connection<CommentData>;
};

function List({ items }: { items: string[] }) {
  if (items.length === 0) return null;
  return (
    <ul>
      {items.map((item, index) => (
        <li key={index}>{item}</li>
      ))}
    </ul>
  );
}

/** Links from the API are shown only when they are http(s): never a javascript: URL. */
function safeUrl(url: string): string | null {
  try {
    const parsed = new URL(url);
    return parsed.protocol === "https:" || parsed.protocol === "http:" ? parsed.href : null;
  } catch {
    return null;
  }
}

export function SolutionPage({ id }: { id: string }) {
  const { t, language } = useTexts();
  const [loaded, reload] = useQuery<{ node: SolutionData | null }>(SOLUTION, { id }, id);
  if (loaded.state !== "done") return <Pending loaded={loaded} retry={reload} />;
  const solution = loaded.data.node;
  if (!solution || solution.__typename !== "Solution") return <NotFound />;
  const number = (value: number) => value.toLocaleString(language, { maximumFractionDigits: 2 });
  const cost = solution.cost
    ? `${money(language, solution.cost.amount, solution.cost.currency)} (${solution.cost.year})` +
      (solution.cost.eur !== null && solution.cost.currency !== "EUR"
        ? ` · ${format(t.solution.costEur, { amount: money(language, solution.cost.eur, "EUR") })}`
        : "")
    : null;
  const period = [solution.startedOn, solution.completedOn].filter(Boolean).join(" – ");
  const transfer = solution.transferability;

  return (
    <article>
      <p class="muted">{solution.city.name}</p>
      <h1 tabIndex={-1}>{solution.title}</h1>
      <p class="lead">{solution.summary}</p>
      <Facts
        rows={[
          [t.solution.status, t.solutionStatus[solution.status]],
          [t.problem.hazards, solution.hazards.map((h) => t.hazard[h] ?? h).join(", ")],
          [t.problem.sectors, solution.sectors.map((s) => t.sector[s] ?? s).join(", ")],
          [t.solution.period, period],
          [t.solution.cost, cost],
          [
            t.solution.costPerResident,
            solution.costPerResidentEur !== null
              ? new Intl.NumberFormat(language, { style: "currency", currency: "EUR" }).format(
                  solution.costPerResidentEur,
                )
              : null,
          ],
          [t.solution.residentsServed, solution.residentsServed?.toLocaleString(language)],
          [t.solution.partners, solution.partners.join(", ")],
          [t.solution.funding, solution.fundingSources.join(", ")],
          [
            t.solution.evidence,
            solution.evidence ? format(t.solution.evidenceLevel, { level: solution.evidence.level }) : null,
          ],
        ]}
      />
      <p class="summary-line">{solution.adoptionSummary.text}</p>
      <Prose text={solution.body} />
      {solution.adaptationNotes && (
        <section aria-labelledby="notes-heading">
          <h2 id="notes-heading">{t.solution.adaptationNotes}</h2>
          <Prose text={solution.adaptationNotes} />
        </section>
      )}
      {solution.outcomes.length > 0 && (
        <section aria-labelledby="outcomes-heading">
          <h2 id="outcomes-heading">{t.solution.outcomes}</h2>
          <ul>
            {solution.outcomes.map((outcome, index) => (
              <li key={index}>
                {outcome.metric}: <strong>{number(outcome.value)}</strong> {outcome.unit ?? ""}
                {outcome.note && <span class="muted"> · {outcome.note}</span>}
              </li>
            ))}
          </ul>
        </section>
      )}
      {(solution.successFactors.length > 0 || solution.limitingFactors.length > 0) && (
        <div class="columns">
          {solution.successFactors.length > 0 && (
            <section aria-labelledby="success-heading">
              <h2 id="success-heading">{t.solution.successFactors}</h2>
              <List items={solution.successFactors} />
            </section>
          )}
          {solution.limitingFactors.length > 0 && (
            <section aria-labelledby="limits-heading">
              <h2 id="limits-heading">{t.solution.limitingFactors}</h2>
              <List items={solution.limitingFactors} />
            </section>
          )}
        </div>
      )}
      {transfer && (
        <section aria-labelledby="transfer-heading">
          <h2 id="transfer-heading">{t.solution.transferability}</h2>
          {transfer.context && <p>{transfer.context}</p>}
          {transfer.prerequisites.length > 0 && (
            <>
              <h3>{t.solution.prerequisites}</h3>
              <List items={transfer.prerequisites} />
            </>
          )}
          {transfer.doDifferently && (
            <>
              <h3>{t.solution.doDifferently}</h3>
              <p>{transfer.doDifferently}</p>
            </>
          )}
        </section>
      )}
      {solution.evidence && solution.evidence.links.length > 0 && (
        <section aria-labelledby="evidence-heading">
          <h2 id="evidence-heading">{t.solution.evidence}</h2>
          <ul>
            {solution.evidence.links.map((link) => {
              const url = safeUrl(link.url);
              return (
                <li key={link.url}>
                  {url ? (
                    <a href={url} rel="noopener noreferrer" target="_blank">
                      {link.title || url}
                    </a>
                  ) : (
                    link.title || link.url
                  )}
                </li>
              );
            })}
          </ul>
        </section>
      )}
      <section aria-labelledby="lineage-heading">
        <h2 id="lineage-heading">{t.solution.lineage}</h2>
        <Lineage
          self={{ id: solution.id, title: solution.title, city: solution.city.name }}
          lineage={solution.lineage}
        />
      </section>
      <section aria-labelledby="adoptions-heading">
        <h2 id="adoptions-heading">{t.solution.adoptions}</h2>
        {nodes(solution.adoptions).length === 0 ? (
          <p class="muted">{t.solution.noAdoptions}</p>
        ) : (
          <ul>
            {nodes(solution.adoptions).map((adoption) => (
              <li key={adoption.id}>
                <strong>{adoption.city.name}</strong>: {t.adoptionStage[adoption.stage]}{" "}
                <span class="muted">
                  · {new Date(adoption.updatedAt).toLocaleDateString(language)}
                </span>
              </li>
            ))}
          </ul>
        )}
        {nodes(solution.outcomeReports).length > 0 && (
          <>
            <h3>{t.solution.outcomeReports}</h3>
            <ul>
              {nodes(solution.outcomeReports).map((report, index) => (
                <li key={index}>
                  <time dateTime={report.measuredOn}>
                    {new Date(`${report.measuredOn}T00:00:00Z`).toLocaleDateString(language, {
                      timeZone: "UTC",
                    })}
                  </time>{" "}
                  · {report.city.name} · {report.metric}:{" "}
                  <strong>{number(report.value)}</strong> {report.unit ?? ""}
                </li>
              ))}
            </ul>
          </>
        )}
      </section>
      {solution.problems.length > 0 && (
        <section aria-labelledby="problems-heading">
          <h2 id="problems-heading">{t.solution.problems}</h2>
          <ThreadList kind="problems" items={solution.problems} />
        </section>
      )}
      <section aria-labelledby="similar-heading">
        <h2 id="similar-heading">{t.solution.similar}</h2>
        <SuggestionList items={solution.similarSolutions.edges} kind="solutions" />
      </section>
      <Comments subjectId={solution.id} comments={solution.comments} onChanged={reload} />
    </article>
  );
}
