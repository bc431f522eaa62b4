// Reading through the API in a component: loading, the data or the error, and a reload.

import { useCallback, useEffect, useState } from "preact/hooks";
import { gql } from "./api";

export type Loaded<T> =
  | { state: "loading" }
  | { state: "done"; data: T }
  | { state: "failed"; error: string };

export function useQuery<T>(
  query: string,
  variables: object,
  key: string,
): [Loaded<T>, () => void] {
  // What was read, and for which key: another key shows "loading" from its first render (no
  // flash of the previous item); a reload of the same key keeps the page as it is.
  const [loaded, setLoaded] = useState<{ key: string; value: Loaded<T> }>({
    key,
    value: { state: "loading" },
  });
  const [round, setRound] = useState(0);
  useEffect(() => {
    let current = true;
    gql<T>(query, variables).then(
      (data) => current && setLoaded({ key, value: { state: "done", data } }),
      (error: Error) =>
        current && setLoaded({ key, value: { state: "failed", error: error.message } }),
    );
    return () => {
      current = false;
    };
  }, [query, key, round]);
  const reload = useCallback(() => setRound((n) => n + 1), []);
  return [loaded.key === key ? loaded.value : { state: "loading" }, reload];
}

export type Connection<T> = { edges: { node: T }[] };

export function nodes<T>(connection: Connection<T> | null | undefined): T[] {
  return connection?.edges.map((edge) => edge.node) ?? [];
}
