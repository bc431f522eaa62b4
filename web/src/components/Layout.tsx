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
  // A new page: move the focus to its heading, as a page load would for a screen reader.
  useEffect(() => {
    document.querySelector<HTMLElement>("main h1")?.focus({ preventScroll: true });
  }, [path, route.name === "problem" || route.name === "solution" ? route.id : ""]);

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
