import { useState } from "preact/hooks";
import { errorsByField, gql, newMutationId, type UserError } from "../api";
import { useTexts } from "../i18n";
import { PUBLISH_PROBLEM } from "../queries";
import { navigate } from "../router";
import { Checkboxes } from "../components/Checkboxes";
import { HAZARDS, SECTORS, URGENCIES, type Hazard, type Sector, type Urgency } from "../taxonomy";

type Form = {
  title: string;
  summary: string;
  body: string;
  hazards: Hazard[];
  sectors: Sector[];
  tags: string;
  urgency: Urgency;
};

const EMPTY: Form = {
  title: "",
  summary: "",
  body: "",
  hazards: [],
  sectors: [],
  tags: "",
  urgency: "ROUTINE",
};

/** The error shown next to a field, wired to it for screen readers. */
function FieldError({ id, error }: { id: string; error: string | undefined }) {
  if (!error) return null;
  return (
    <p id={`${id}-error`} class="field-error">
      {error}
    </p>
  );
}

function described(id: string, error: string | undefined) {
  return error ? { "aria-invalid": "true" as const, "aria-describedby": `${id}-error` } : {};
}

export function PublishPage() {
  const { t } = useTexts();
  const [form, setForm] = useState<Form>(EMPTY);
  const [errors, setErrors] = useState<Map<string, string>>(new Map());
  const [failure, setFailure] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  // One id per form filled in: sending it again (a retry after a timeout) publishes once.
  const [mutationId, setMutationId] = useState(newMutationId);

  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setFailure(null);
    try {
      const result = await gql<{
        publishProblem: { problem: { id: string } | null; userErrors: UserError[] };
      }>(PUBLISH_PROBLEM, {
        input: {
          title: form.title,
          summary: form.summary,
          body: form.body || null,
          hazards: form.hazards,
          sectors: form.sectors,
          tags: form.tags
            .split(",")
            .map((tag) => tag.trim())
            .filter(Boolean),
          urgency: form.urgency,
          clientMutationId: mutationId,
        },
      });
      const { problem, userErrors } = result.publishProblem;
      if (userErrors.length || !problem) {
        setErrors(errorsByField(userErrors));
        setMutationId(newMutationId()); // the next try is a new request
        requestAnimationFrame(() => {
          // The first invalid field takes the focus (a fieldset: its first box), else the list.
          const invalid = document.querySelector<HTMLElement>("[aria-invalid=true]");
          const field = invalid?.matches("fieldset") ? invalid.querySelector("input") : invalid;
          (field ?? document.getElementById("publish-errors"))?.focus();
        });
        return;
      }
      navigate(`/app/problems/${encodeURIComponent(problem.id)}`);
    } catch (error) {
      setFailure((error as Error).message);
    } finally {
      setBusy(false);
    }
  };

  const other = [...errors.entries()].filter(
    ([field]) => !["title", "summary", "body", "hazards", "sectors", "tags", "urgency"].includes(field),
  );

  return (
    <section class="narrow">
      <h1 tabIndex={-1}>{t.publish.title}</h1>
      <p>{t.publish.intro}</p>
      {(errors.size > 0 || failure) && (
        <div id="publish-errors" role="alert" class="error" tabIndex={-1}>
          <p>{failure ?? t.publish.fix}</p>
          {other.length > 0 && (
            <ul>
              {other.map(([field, message]) => (
                <li key={field}>{message}</li>
              ))}
            </ul>
          )}
        </div>
      )}
      <form onSubmit={submit} noValidate>
        <label for="title">{t.publish.titleField}</label>
        <input
          id="title"
          type="text"
          value={form.title}
          onInput={(event) => setForm({ ...form, title: event.currentTarget.value })}
          {...described("title", errors.get("title"))}
        />
        <FieldError id="title" error={errors.get("title")} />

        <label for="summary">{t.publish.summary}</label>
        <textarea
          id="summary"
          rows={3}
          value={form.summary}
          onInput={(event) => setForm({ ...form, summary: event.currentTarget.value })}
          {...described("summary", errors.get("summary"))}
        />
        <FieldError id="summary" error={errors.get("summary")} />

        <Checkboxes
          id="hazards"
          legend={t.publish.hazards}
          values={HAZARDS}
          chosen={form.hazards}
          label={(value) => t.hazard[value]}
          onChange={(hazards) => setForm({ ...form, hazards })}
          error={errors.get("hazards")}
        />
        <FieldError id="hazards" error={errors.get("hazards")} />

        <Checkboxes
          id="sectors"
          legend={t.publish.sectors}
          values={SECTORS}
          chosen={form.sectors}
          label={(value) => t.sector[value]}
          onChange={(sectors) => setForm({ ...form, sectors })}
          error={errors.get("sectors")}
        />
        <FieldError id="sectors" error={errors.get("sectors")} />

        <label for="urgency">{t.publish.urgency}</label>
        <select
          id="urgency"
          value={form.urgency}
          onChange={(event) => setForm({ ...form, urgency: event.currentTarget.value as Urgency })}
        >
          {URGENCIES.map((urgency) => (
            <option value={urgency} key={urgency}>
              {t.urgency[urgency]}
            </option>
          ))}
        </select>

        <label for="tags">{t.publish.tags}</label>
        <input
          id="tags"
          type="text"
          value={form.tags}
          onInput={(event) => setForm({ ...form, tags: event.currentTarget.value })}
          {...described("tags", errors.get("tags"))}
        />
        <FieldError id="tags" error={errors.get("tags")} />

        <label for="body">{t.publish.body}</label>
        <textarea
          id="body"
          rows={8}
          value={form.body}
          onInput={(event) => setForm({ ...form, body: event.currentTarget.value })}
          {...described("body", errors.get("body"))}
        />
        <FieldError id="body" error={errors.get("body")} />

        <div class="actions">
          <button type="submit" disabled={busy}>
            {busy ? t.publish.publishing : t.publish.submit}
          </button>
        </div>
      </form>
    </section>
  );
}
