// The UI's languages: the person's choice (kept in this browser), else the browser's first
// language the app speaks, else English.

import { createContext } from "preact";
import { useContext } from "preact/hooks";
import { en, type Messages } from "./messages/en";
import { es } from "./messages/es";
import { fr } from "./messages/fr";
import { nl } from "./messages/nl";
import { pt } from "./messages/pt";

export const LANGUAGES = { en, es, nl, pt, fr } as const;
export type Language = keyof typeof LANGUAGES;
const KEY = "cx.language";

function isLanguage(code: string | null): code is Language {
  return code !== null && Object.hasOwn(LANGUAGES, code);
}

export function initialLanguage(): Language {
  const chosen = localStorage.getItem(KEY);
  if (isLanguage(chosen)) return chosen;
  for (const tag of navigator.languages ?? [navigator.language]) {
    const code = tag.slice(0, 2).toLowerCase();
    if (isLanguage(code)) return code;
  }
  return "en";
}

export function rememberLanguage(language: Language): void {
  localStorage.setItem(KEY, language);
  document.documentElement.lang = language;
}

export const Texts = createContext<{ t: Messages; language: Language }>({ t: en, language: "en" });

export function useTexts(): { t: Messages; language: Language } {
  return useContext(Texts);
}

/** The form of `forms` for `count` in `language` (CLDR plural rules: French says "0 problème
 * ouvert", English "0 open problems"), with {count} filled in. */
export function plural(
  language: Language,
  forms: { one: string; other: string },
  count: number,
): string {
  const form = new Intl.PluralRules(language).select(count) === "one" ? forms.one : forms.other;
  return format(form, { count: count.toLocaleString(language) });
}

/** An amount of `currency` (ISO 4217) in the language's way; a code Intl does not know is
 * written after the number. */
export function money(language: Language, amount: number, currency: string): string {
  try {
    return new Intl.NumberFormat(language, {
      style: "currency",
      currency,
      maximumFractionDigits: 0,
    }).format(amount);
  } catch {
    return `${amount.toLocaleString(language, { maximumFractionDigits: 0 })} ${currency}`;
  }
}

/** `template` with each {name} replaced by `values[name]`. */
export function format(template: string, values: Record<string, string | number>): string {
  return template.replace(/\{(\w+)\}/g, (whole, name: string) =>
    name in values ? String(values[name]) : whole,
  );
}
