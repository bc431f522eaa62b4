// The CRO web app: sign-in, then the live feed, problem and solution pages, the map and the
// publish form (docs/web-app.md).

import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { currentSession, onSessionChange, type Session } from "./auth";
import { initialLanguage, LANGUAGES, rememberLanguage, Texts, type Language } from "./i18n";
import { Layout } from "./components/Layout";
import { FeedPage } from "./pages/Feed";
import { MapPage } from "./pages/Map";
import { NotFound } from "./pages/NotFound";
import { ProblemPage } from "./pages/Problem";
import { PublishPage } from "./pages/Publish";
import { SignedInPage } from "./pages/SignedIn";
import { SignInPage } from "./pages/SignIn";
import { SolutionPage } from "./pages/Solution";
import { useRoute } from "./router";
import "./styles.css";

function App() {
  const route = useRoute();
  const [language, setLanguage] = useState<Language>(initialLanguage);
  const [session, setSession] = useState<Session | null>(currentSession);

  useEffect(() => rememberLanguage(language), [language]);
  useEffect(() => onSessionChange(() => setSession(currentSession())), []);

  const texts = { t: LANGUAGES[language], language };
  const refresh = () => setSession(currentSession());

  let page;
  if (route.name === "signed-in") {
    page = <SignedInPage onSignedIn={refresh} />;
  } else if (!session) {
    page = <SignInPage />;
  } else {
    switch (route.name) {
      case "feed":
        page = <FeedPage session={session} />;
        break;
      case "problem":
        page = <ProblemPage id={route.id} session={session} />;
        break;
      case "solution":
        page = <SolutionPage id={route.id} />;
        break;
      case "map":
        page = <MapPage />;
        break;
      case "publish":
        page = <PublishPage />;
        break;
      default:
        page = <NotFound />;
    }
  }
  return (
    <Texts.Provider value={texts}>
      <Layout
        session={route.name === "signed-in" ? null : session}
        route={route}
        language={language}
        onLanguage={setLanguage}
        onSignedOut={refresh}
      >
        {page}
      </Layout>
    </Texts.Provider>
  );
}

render(<App />, document.getElementById("root")!);
