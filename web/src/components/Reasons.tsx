import { format, useTexts } from "../i18n";

export type Suggested = {
  score: number;
  reasons: { code: string; text: string }[];
  node: { id: string; title: string; city: { name: string } };
};

/** Ranked suggestions, each with its score and the reasons the ranking gives. */
export function SuggestionList({ items, kind }: { items: Suggested[]; kind: "problems" | "solutions" }) {
  const { t, language } = useTexts();
  const score = (value: number) =>
    value.toLocaleString(language, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  if (items.length === 0) return <p class="muted">{t.common.none}</p>;
  return (
    <ol class="suggestions">
      {items.map((item) => (
        <li key={item.node.id}>
          <a href={`/app/${kind}/${encodeURIComponent(item.node.id)}`}>{item.node.title}</a>{" "}
          <span class="muted">
            · {item.node.city.name} · {format(t.common.score, { score: score(item.score) })}
          </span>
          {item.reasons.length > 0 && (
            <ul class="reasons" aria-label={t.common.reasons}>
              {item.reasons.map((reason) => (
                <li key={reason.code + reason.text}>{reason.text}</li>
              ))}
            </ul>
          )}
        </li>
      ))}
    </ol>
  );
}
