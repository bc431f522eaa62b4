import { useEffect, useState } from "preact/hooks";
import { realms, signIn, type Realm } from "../auth";
import { format, useTexts } from "../i18n";

export function SignInPage() {
  const { t } = useTexts();
  const [list, setList] = useState<Realm[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [city, setCity] = useState(() => localStorage.getItem("cx.last-city") ?? "");
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    realms().then(setList, (failure: Error) => setError(failure.message));
  }, []);

  const submit = async (event: Event) => {
    event.preventDefault();
    const realm = list?.find((candidate) => candidate.slug === city);
    if (!realm) return;
    localStorage.setItem("cx.last-city", realm.slug);
    setBusy(true);
    const back = location.pathname.startsWith("/app") ? location.pathname : "/app/";
    await signIn(realm, back + location.search);
  };

  return (
    <section class="narrow">
      <h1 tabIndex={-1}>{t.signIn.title}</h1>
      <p>{t.signIn.intro}</p>
      {error && (
        <p role="alert" class="error">
          {format(t.signIn.citiesFailed, { error })}
        </p>
      )}
      {!list && !error && (
        <p role="status" class="muted">
          {t.signIn.loadingCities}
        </p>
      )}
      {list && (
        <form onSubmit={submit}>
          <label for="city">{t.signIn.city}</label>
          <select
            id="city"
            required
            value={city}
            onChange={(event) => setCity(event.currentTarget.value)}
          >
            <option value="">{t.signIn.chooseCity}</option>
            {list.map((realm) => (
              <option value={realm.slug} key={realm.slug}>
                {realm.name} ({realm.country})
              </option>
            ))}
          </select>
          <button type="submit" disabled={busy || !city}>
            {busy ? t.signIn.redirecting : t.signIn.submit}
          </button>
        </form>
      )}
    </section>
  );
}
