// The page's two languages through i18next: the language comes from ?lang=zh|en, else the browser's
// preferred languages; `rich` turns a translation's `code` and [[name]] marks into untranslated elements.
import i18next from 'i18next';
import { html } from '../dom.ts';
import type { Problem } from '../params.ts';
import { en } from './en.ts';
import { zh } from './zh.ts';

export const languages = ['en', 'zh'] as const;
export type Language = (typeof languages)[number];

const i18n = i18next.createInstance();
void i18n.init({
  lng: 'en',
  fallbackLng: 'en',
  resources: { en: { translation: en }, zh: { translation: zh } },
  initAsync: false,
  interpolation: { escapeValue: false },
});

function isLanguage(text: string): text is Language {
  return (languages as readonly string[]).includes(text);
}

/** ?lang= when it names a language; else the first of the browser's languages that the page has; else English. */
export function pickLanguage(search: string, preferred: readonly string[]): { language: Language; problem: Problem | null } {
  const asked = new URLSearchParams(search).get('lang');
  if (asked !== null && isLanguage(asked)) return { language: asked, problem: null };
  const fromBrowser = preferred.map((tag) => tag.toLowerCase().split('-')[0]).find(isLanguage) ?? 'en';
  return { language: fromBrowser, problem: asked === null ? null : { key: 'notLang', values: { name: 'lang', text: asked, using: fromBrowser } } };
}

export function setLanguage(language: Language): void {
  void i18n.changeLanguage(language);
  document.documentElement.lang = language === 'zh' ? 'zh-CN' : 'en';
}

export function language(): Language {
  const current = i18n.language;
  return isLanguage(current) ? current : 'en';
}

/** A translation as plain text (marks removed). */
export function t(key: string, values: Record<string, string | number> = {}): string {
  return i18n.t(key, values).replace(/`([^`]+)`|\[\[([^\]]+)\]\]/g, (_, code: string | undefined, name: string | undefined) => code ?? name ?? '');
}

/** A translation with its marks kept, to pass into another translation. */
export function marked(key: string, values: Record<string, string | number> = {}): string {
  return i18n.t(key, values);
}

/** A translation as nodes: `code` becomes <code translate="no">, [[name]] a <span translate="no">. */
export function rich(key: string, values: Record<string, string | number> = {}): Node[] {
  return richText(i18n.t(key, values));
}

/** Marked text as nodes (see rich). */
export function richText(text: string): Node[] {
  const nodes: Node[] = [];
  let last = 0;
  for (const match of text.matchAll(/`([^`]+)`|\[\[([^\]]+)\]\]/g)) {
    if (match.index > last) nodes.push(document.createTextNode(text.slice(last, match.index)));
    const [whole, code, name] = match;
    nodes.push(whole.startsWith('`') ? html('code', { translate: 'no' }, [code]) : html('span', { translate: 'no' }, [name]));
    last = match.index + match[0].length;
  }
  if (last < text.length) nodes.push(document.createTextNode(text.slice(last)));
  return nodes;
}

/** Fills every [data-i18n] element's text (and [data-i18n-label] its aria-label) in the current language. */
export function translateStatic(root: ParentNode = document): void {
  for (const element of root.querySelectorAll<HTMLElement>('[data-i18n]')) element.replaceChildren(...rich(element.dataset.i18n ?? ''));
  for (const element of root.querySelectorAll<HTMLElement>('[data-i18n-label]')) element.setAttribute('aria-label', t(element.dataset.i18nLabel ?? ''));
  document.title = t('meta.title');
  document.querySelector('meta[name="description"]')?.setAttribute('content', t('meta.description'));
}
