// Paths under /app, routed in the browser: the server answers every one with the app's page.

import { useEffect, useState } from "preact/hooks";

export type Route =
  | { name: "feed" }
  | { name: "signed-in" }
  | { name: "problem"; id: string }
  | { name: "solution"; id: string }
  | { name: "map" }
  | { name: "publish" }
  | { name: "not-found" };

export function parse(path: string): Route {
  let parts: string[];
  try {
    parts = path.replace(/^\/app\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  } catch {
    return { name: "not-found" }; // a malformed %-escape
  }
  if (parts.length === 0) return { name: "feed" };
  if (parts.length === 1 && parts[0] === "signed-in") return { name: "signed-in" };
  if (parts.length === 1 && parts[0] === "map") return { name: "map" };
  if (parts.length === 1 && parts[0] === "publish") return { name: "publish" };
  if (parts.length === 2 && parts[0] === "problems") return { name: "problem", id: parts[1] };
  if (parts.length === 2 && parts[0] === "solutions") return { name: "solution", id: parts[1] };
  return { name: "not-found" };
}

export function href(route: Route): string {
  switch (route.name) {
    case "problem":
      return `/app/problems/${encodeURIComponent(route.id)}`;
    case "solution":
      return `/app/solutions/${encodeURIComponent(route.id)}`;
    case "map":
    case "publish":
    case "signed-in":
      return `/app/${route.name}`;
    default:
      return "/app/";
  }
}

export function navigate(to: string, replace = false): void {
  if (replace) history.replaceState(null, "", to);
  else history.pushState(null, "", to);
  dispatchEvent(new PopStateEvent("popstate"));
}

/** The current route; links inside the app navigate without reloading the page. */
export function useRoute(): Route {
  const [route, setRoute] = useState(() => parse(location.pathname));
  useEffect(() => {
    const update = () => setRoute(parse(location.pathname));
    const click = (event: MouseEvent) => {
      const link = (event.target as Element | null)?.closest?.("a");
      if (!link || event.defaultPrevented || event.button !== 0) return;
      if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
      const url = new URL(link.href, location.href);
      if (url.origin !== location.origin || !url.pathname.startsWith("/app")) return;
      if (link.target || link.hasAttribute("download")) return;
      // A link within this page (the skip link): the browser's own, scrolling and focusing.
      if (url.hash && url.pathname === location.pathname && url.search === location.search) return;
      event.preventDefault();
      navigate(url.pathname + url.search);
    };
    addEventListener("popstate", update);
    document.addEventListener("click", click);
    return () => {
      removeEventListener("popstate", update);
      document.removeEventListener("click", click);
    };
  }, []);
  return route;
}
