import { useTexts } from "../i18n";

type Entry = {
  depth: number;
  adaptationNotes: string | null;
  adaptedFromId: string | null;
  solution: { id: string; title: string; city: { name: string } };
};

export type LineageData = { ancestors: Entry[]; descendants: Entry[]; truncated: boolean };

type Placed = { id: string; title: string; city: string; row: number; column: number; from: string | null };

const BOX_W = 250;
const BOX_H = 48;
const GAP_X = 24;
const GAP_Y = 36;

function short(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** Lay out the generations as rows: ancestors above (the original on top), this solution,
 * then each generation of adaptations; an edge joins each solution to the one it adapted. */
function place(self: { id: string; title: string; city: string }, lineage: LineageData): Placed[] {
  const placed: Placed[] = [];
  const ancestors = [...lineage.ancestors].sort((a, b) => b.depth - a.depth);
  const top = ancestors.length;
  ancestors.forEach((entry, index) =>
    placed.push({
      id: entry.solution.id,
      title: entry.solution.title,
      city: entry.solution.city.name,
      row: index,
      column: 0,
      from: index > 0 ? ancestors[index - 1].solution.id : null,
    }),
  );
  placed.push({ ...self, row: top, column: 0, from: top > 0 ? ancestors[top - 1].solution.id : null });
  const columns = new Map<number, number>();
  for (const entry of [...lineage.descendants].sort((a, b) => a.depth - b.depth)) {
    const row = top + entry.depth;
    const column = columns.get(row) ?? 0;
    columns.set(row, column + 1);
    placed.push({
      id: entry.solution.id,
      title: entry.solution.title,
      city: entry.solution.city.name,
      row,
      column,
      from: entry.adaptedFromId ?? self.id,
    });
  }
  return placed;
}

export function Lineage(props: {
  self: { id: string; title: string; city: string };
  lineage: LineageData;
}) {
  const { t } = useTexts();
  const { lineage } = props;
  if (lineage.ancestors.length === 0 && lineage.descendants.length === 0) {
    return <p class="muted">{t.solution.noLineage}</p>;
  }
  const placed = place(props.self, lineage);
  const widest = Math.max(...placed.map((node) => node.column)) + 1;
  const rows = Math.max(...placed.map((node) => node.row)) + 1;
  const x = (node: Placed) => node.column * (BOX_W + GAP_X);
  const y = (node: Placed) => node.row * (BOX_H + GAP_Y);
  const byId = new Map(placed.map((node) => [node.id, node]));
  const width = widest * (BOX_W + GAP_X) - GAP_X;
  const height = rows * (BOX_H + GAP_Y) - GAP_Y;
  return (
    <figure class="lineage">
      {/* The drawing repeats the list below, which carries the links (keyboard, readers). */}
      <svg
        aria-hidden="true"
        viewBox={`-2 -2 ${width + 4} ${height + 4}`}
        width={width + 4}
        style={{ maxWidth: "100%", height: "auto" }}
      >
        {placed
          .filter((node) => node.from && byId.has(node.from))
          .map((node) => {
            const parent = byId.get(node.from!)!;
            return (
              <line
                key={`edge-${node.id}`}
                x1={x(parent) + BOX_W / 2}
                y1={y(parent) + BOX_H}
                x2={x(node) + BOX_W / 2}
                y2={y(node)}
                class="edge"
              />
            );
          })}
        {placed.map((node) => (
          <g key={node.id} transform={`translate(${x(node)} ${y(node)})`}>
            <rect
              width={BOX_W}
              height={BOX_H}
              rx={6}
              class={node.id === props.self.id ? "node self" : "node"}
            />
            <text x={8} y={19} class="title">
              {short(node.title, 34)}
            </text>
            <text x={8} y={36} class="city">
              {short(node.city, 36)}
            </text>
          </g>
        ))}
      </svg>
      <figcaption>{t.solution.lineageLabel}</figcaption>
      <ol class="lineage-list">
        {placed.map((node) => (
          <li key={node.id} style={{ marginInlineStart: `${node.row * 0.75}rem` }}>
            {node.id === props.self.id ? (
              <strong>
                {node.title} ({t.solution.thisSolution})
              </strong>
            ) : (
              <a href={`/app/solutions/${encodeURIComponent(node.id)}`}>{node.title}</a>
            )}{" "}
            <span class="muted">· {node.city}</span>
          </li>
        ))}
      </ol>
      {lineage.truncated && <p class="muted">…</p>}
    </figure>
  );
}
