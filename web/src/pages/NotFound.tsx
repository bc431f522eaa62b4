import { useTexts } from "../i18n";

export function NotFound() {
  const { t } = useTexts();
  return (
    <section class="narrow">
      <h1 tabIndex={-1}>{t.common.notFound}</h1>
      <p>{t.common.notFoundText}</p>
      <a href="/app/">{t.common.backToFeed}</a>
    </section>
  );
}
