import { format, useTexts } from "../i18n";
import type { Loaded } from "../data";

/** What a page shows while its data loads or when it failed; null once it is there. */
export function Pending<T>({ loaded, retry }: { loaded: Loaded<T>; retry: () => void }) {
  const { t } = useTexts();
  if (loaded.state === "loading") {
    return (
      <p role="status" class="muted loading">
        {t.common.loading}
      </p>
    );
  }
  if (loaded.state === "failed") {
    return (
      <div role="alert" class="error">
        <p>{format(t.common.error, { error: loaded.error })}</p>
        <button type="button" onClick={retry}>
          {t.common.retry}
        </button>
      </div>
    );
  }
  return null;
}
