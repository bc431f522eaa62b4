import { useEffect, useState } from "preact/hooks";
import { completeSignIn } from "../auth";
import { format, useTexts } from "../i18n";
import { navigate } from "../router";

/** The realm's redirect back: trade the code, then go where the person was going. */
export function SignedInPage({ onSignedIn }: { onSignedIn: () => void }) {
  const { t } = useTexts();
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const params = new URLSearchParams(location.search);
    history.replaceState(null, "", "/app/signed-in"); // the code must not stay in history
    completeSignIn(params).then(
      (to) => {
        onSignedIn();
        navigate(to, true);
      },
      (failure: Error) => setError(failure.message),
    );
  }, []);
  return (
    <section class="narrow">
      <h1 tabIndex={-1}>{t.signIn.title}</h1>
      {error ? (
        <div role="alert" class="error">
          <p>{format(t.signIn.failed, { error })}</p>
          <a href="/app/">{t.signIn.again}</a>
        </div>
      ) : (
        <p role="status">{t.signIn.completing}</p>
      )}
    </section>
  );
}
