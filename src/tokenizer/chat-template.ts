// Chat templates: the Jinja templates of tokenizer_config.json, rendered with @huggingface/jinja
// (the implementation transformers.js uses), with the variables transformers passes.
import { Template } from '@huggingface/jinja';
import type { ChatMessage, ChatTemplateOptions } from './tokenizer.js';

const compiled = new Map<string, Template>();

export interface TemplateTokens {
  bos_token?: string | null;
  eos_token?: string | null;
  pad_token?: string | null;
  unk_token?: string | null;
}

export function renderChatTemplate(
  template: string, messages: readonly ChatMessage[], tokens: TemplateTokens, opts: ChatTemplateOptions = {},
): string {
  let t = compiled.get(template);
  if (!t) {
    try {
      t = new Template(template);
    } catch (e) {
      throw new Error(`chat template does not parse: ${(e as Error).message}`);
    }
    compiled.set(template, t);
  }
  return t.render({
    messages,
    add_generation_prompt: opts.addGenerationPrompt ?? true,
    ...tokens,
    ...opts.extra,
  });
}

/** tokenizer_config.json's chat_template: a string, or a list of {name, template} (the 'default' one is used). */
export function pickChatTemplate(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    const named = value as { name?: string; template?: string }[];
    return (named.find((t) => t.name === 'default') ?? named[0])?.template ?? null;
  }
  return null;
}
