// Labels and prompt templates as the page's controls give them.

/** Labels from free text, comma- or line-separated; trimmed, empty and repeated ones dropped. */
export function parseLabels(text) {
  return [...new Set(text.split(/[\n,]/).map((l) => l.trim()).filter(Boolean))];
}

/** The template choices: the model's templates ensembled, OpenAI's 80, or one template alone. */
export function templateChoices(modelTemplates) {
  return [
    { value: "ensemble", text: `Ensemble: the default model's ${modelTemplates.length} templates` },
    { value: "imagenet", text: "Ensemble: OpenAI's 80 ImageNet templates" },
    ...modelTemplates.map((t, i) => ({ value: String(i), text: `Single: ${t}` })),
  ];
}

/** What `Clip.classify` takes as `templates` for a choice's value. */
export function templatesFor(value, modelTemplates) {
  if (value === "ensemble") return modelTemplates;
  if (value === "imagenet") return "imagenet";
  return [modelTemplates[Number(value)]];
}
