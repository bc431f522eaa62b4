/** Links to problems or solutions, each with its city. */
export function ThreadList(props: {
  kind: "problems" | "solutions";
  items: { id: string; title: string; city: { name: string } }[];
}) {
  return (
    <ul>
      {props.items.map((item) => (
        <li key={item.id}>
          <a href={`/app/${props.kind}/${encodeURIComponent(item.id)}`}>{item.title}</a>{" "}
          <span class="muted">· {item.city.name}</span>
        </li>
      ))}
    </ul>
  );
}
