// Reading through the API in a component: loading, the data or the error, and a reload.

import { useCallback, useEffect, useRef, useState } from "preact/hooks";
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
  const [loaded, setLoaded] = useState<Loaded<T>>({ state: "loading" });
  const [round, setRound] = useState(0);
  const shownKey = useRef(key);
  useEffect(() => {
    let current = true;
    if (shownKey.current !== key) setLoaded({ state: "loading" }); // a reload keeps the page
    shownKey.current = key;
    gql<T>(query, variables).then(
      (data) => current && setLoaded({ state: "done", data }),
      (error: Error) => current && setLoaded({ state: "failed", error: error.message }),
    );
    return () => {
      current = false;
    };
  }, [query, key, round]);
  return [loaded, useCallback(() => setRound((n) => n + 1), [])];
}

export type Connection<T> = { edges: { node: T }[] };

export function nodes<T>(connection: Connection<T> | null | undefined): T[] {
  return connection?.edges.map((edge) => edge.node) ?? [];
}
