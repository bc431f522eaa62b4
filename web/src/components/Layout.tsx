import type { ComponentChildren } from "preact";
import { useEffect } from "preact/hooks";
import { signOut, type Session } from "../auth";
import { format, LANGUAGES, useTexts, type Language } from "../i18n";
import type { Route } from "../router";

type Props = {
  session: Session | null;
  route: Route;
  language: Language;
  onLanguage: (language: Language) => void;
  onSignedOut: () => void;
  children: ComponentChildren;
};

export function Layout({ session, route, language, onLanguage, onSignedOut, children }: Props) {
  const { t } = useTexts();
  const path = route.name;
  const page = `${path}:${route.name === "problem" || route.name === "solution" ? route.id : ""}`;
  // A new page: once its heading is there (pages that read data show it later), move the
  // focus to it, as a page load would for a screen reader, and name the tab after it.
  useEffect(() => {
    const main = document.getElementById("main");
    if (!main) return;
    const settle = () => {
      const heading = main.querySelector<HTMLElement>("h1");
      if (!heading || main.querySelector("[role=status].loading")) return false;
      heading.focus({ preventScroll: true });
      document.title = `${heading.textContent} · ${t.appName}`;
      return true;
    };
    if (settle()) return;
    const watcher = new MutationObserver(() => settle() && watcher.disconnect());
    watcher.observe(main, { childList: true, subtree: true });
    return () => watcher.disconnect();
  }, [page]);

  const current = (name: string) => (path === name ? "page" : undefined);
  return (
    <>
      <a class="skip" href="#main">
        {t.skipToContent}
      </a>
      <header class="top">
        <a class="brand" href="/app/">
          {t.appName}
        </a>
        {session && (
          <nav aria-label={t.nav.label}>
            <a href="/app/" aria-current={current("feed")}>
              {t.nav.feed}
            </a>
            <a href="/app/map" aria-current={current("map")}>
              {t.nav.map}
            </a>
            <a href="/app/publish" aria-current={current("publish")}>
              {t.nav.publish}
            </a>
          </nav>
        )}
        <div class="account">
          <label>
            <span class="visually-hidden">{t.nav.language}</span>
            <select
              value={language}
              onChange={(event) => onLanguage(event.currentTarget.value as Language)}
            >
              {Object.entries(LANGUAGES).map(([code, messages]) => (
                <option value={code} lang={code} key={code}>
                  {messages.languageName}
                </option>
              ))}
            </select>
          </label>
          {session && (
            <>
              <span class="who">{format(t.nav.signedInTo, { city: session.cityName ?? session.city })}</span>
              <button
                type="button"
                onClick={async () => {
                  await signOut();
                  onSignedOut();
                }}
              >
                {t.nav.signOut}
              </button>
            </>
          )}
        </div>
      </header>
      <main id="main">{children}</main>
    </>
  );
}
