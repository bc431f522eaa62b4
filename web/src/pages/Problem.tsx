import { useState } from "preact/hooks";
import { gql, newMutationId, type UserError } from "../api";
import type { Session } from "../auth";
import { nodes, useQuery, type Connection } from "../data";
import { format, useTexts } from "../i18n";
import { FACE_TOO, PROBLEM } from "../queries";
import type { Hazard, Sector, Urgency } from "../taxonomy";
import { Comments, type CommentData } from "../components/Comments";
import { SuggestionList, type Suggested } from "../components/Reasons";
import { Pending } from "../components/Status";
import { ThreadList } from "../components/ThreadList";
import { NotFound } from "./NotFound";
import type { Messages } from "../messages/en";

type CityRef = { slug: string; name: string };

type ProblemData = {
  __typename: "Problem";
  id: string;
  title: string;
  summary: string;
  body: string | null;
  status: keyof Messages["problemStatus"];
  urgency: Urgency;
  hazards: Hazard[];
  sectors: Sector[];
  tags: string[];
  stakeholders: string[];
  affectedPopulation: number | null;
  createdAt: string;
  city: CityRef;
  facedBy: { city: CityRef }[];
  helpOffers: { city: CityRef; note: string | null; solution: { id: string; title: string } | null }[];
  answeredBy: { id: string; title: string; city: { name: string } }[];
  solutions: Connection<{ id: string; title: string; status: string; city: { name: string } }>;
  suggestedSolutions: { edges: Suggested[] };
  similarProblems: { edges: Suggested[] };
  comments: Connection<CommentData>;
};

export function Facts(props: { rows: [string, string | null | undefined][] }) {
  const rows = props.rows.filter(([, value]) => value);
  return (
    <dl class="facts">
      {rows.map(([label, value]) => (
        <div key={label}>
          <dt>{label}</dt>
          <dd>{value}</dd>
        </div>
      ))}
    </dl>
  );
}

/** Markdown shown as text: paragraphs, nothing interpreted (no HTML from the API). */
export function Prose({ text }: { text: string | null }) {
  if (!text) return null;
  return (
    <div class="prose">
      {text.split(/\n{2,}/).map((paragraph, index) => (
        <p key={index}>{paragraph}</p>
      ))}
    </div>
  );
}

export function ProblemPage({ id, session }: { id: string; session: Session }) {
  const { t, language } = useTexts();
  const [loaded, reload] = useQuery<{ node: ProblemData | null }>(PROBLEM, { id }, id);
  const [error, setError] = useState<string | null>(null);
  if (loaded.state !== "done") return <Pending loaded={loaded} retry={reload} />;
  const problem = loaded.data.node;
  if (!problem || problem.__typename !== "Problem") return <NotFound />;

  const faced = problem.facedBy.some((entry) => entry.city.slug === session.city);
  const ours = problem.city.slug === session.city;
  const faceToo = async () => {
    setError(null);
    try {
      const result = await gql<{ faceProblemToo: { userErrors: UserError[] } }>(FACE_TOO, {
        input: { problemId: problem.id, clientMutationId: newMutationId() },
      });
      const [first] = result.faceProblemToo.userErrors;
      if (first) setError(first.message);
      reload();
    } catch (failure) {
      setError((failure as Error).message);
    }
  };

  return (
    <article>
      <p class="muted">
        {format(t.problem.publishedBy, {
          city: problem.city.name,
          date: new Date(problem.createdAt).toLocaleDateString(language, { dateStyle: "long" }),
        })}
      </p>
      <h1 tabIndex={-1}>{problem.title}</h1>
      {problem.urgency === "ACTIVE_CRISIS" && (
        <p class="badge crisis">{t.urgency.ACTIVE_CRISIS}</p>
      )}
      <p class="lead">{problem.summary}</p>
      <Facts
        rows={[
          [t.problem.status, t.problemStatus[problem.status]],
          [t.problem.urgency, t.urgency[problem.urgency]],
          [t.problem.hazards, problem.hazards.map((h) => t.hazard[h] ?? h).join(", ")],
          [t.problem.sectors, problem.sectors.map((s) => t.sector[s] ?? s).join(", ")],
          [t.problem.tags, problem.tags.join(", ")],
          [t.problem.stakeholders, problem.stakeholders.join(", ")],
          [t.problem.affected, problem.affectedPopulation?.toLocaleString(language)],
          [t.problem.facedBy, problem.facedBy.map((entry) => entry.city.name).join(", ")],
        ]}
      />
      {!ours &&
        (faced ? (
          <p class="muted">{t.problem.facedToo}</p>
        ) : (
          <button type="button" onClick={faceToo}>
            {t.problem.faceToo}
          </button>
        ))}
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      <Prose text={problem.body} />

      {problem.answeredBy.length > 0 && (
        <section aria-labelledby="answered-heading">
          <h2 id="answered-heading">{t.problem.answeredBy}</h2>
          <ThreadList kind="solutions" items={problem.answeredBy} />
        </section>
      )}
      <section aria-labelledby="solutions-heading">
        <h2 id="solutions-heading">{t.problem.solutions}</h2>
        {nodes(problem.solutions).length === 0 ? (
          <p class="muted">{t.problem.noSolutions}</p>
        ) : (
          <ThreadList kind="solutions" items={nodes(problem.solutions)} />
        )}
      </section>
      {problem.helpOffers.length > 0 && (
        <section aria-labelledby="help-heading">
          <h2 id="help-heading">{t.problem.helpOffers}</h2>
          <ul>
            {problem.helpOffers.map((offer, index) => (
              <li key={index}>
                <strong>{offer.city.name}</strong>
                {offer.solution && (
                  <>
                    {": "}
                    <a href={`/app/solutions/${encodeURIComponent(offer.solution.id)}`}>
                      {offer.solution.title}
                    </a>
                  </>
                )}
                {offer.note && <span> · {offer.note}</span>}
              </li>
            ))}
          </ul>
        </section>
      )}
      <section aria-labelledby="suggested-heading">
        <h2 id="suggested-heading">{t.problem.suggested}</h2>
        <SuggestionList items={problem.suggestedSolutions.edges} kind="solutions" />
      </section>
      <section aria-labelledby="similar-heading">
        <h2 id="similar-heading">{t.problem.similar}</h2>
        <SuggestionList items={problem.similarProblems.edges} kind="problems" />
      </section>
      <Comments subjectId={problem.id} comments={problem.comments} onChanged={reload} />
    </article>
  );
}
