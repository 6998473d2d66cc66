// Image inputs besides the canvas: the file picker, drag and drop (anywhere on the page; the drop
// zone lights up), and paste. Each hands the file to `use(file, source)`; the package decodes it
// with the same Rust code as the native CLI, and says so when it is not an image.

/** The first image among a DataTransfer's files (or its first file, for the decoder to reject). */
function pickFile(transfer) {
  const files = [...(transfer?.files ?? [])];
  return files.find((f) => f.type.startsWith("image/")) ?? files[0] ?? null;
}

export function imageInputs({ fileInput, dropzone }, use) {
  fileInput.addEventListener("change", () => {
    const file = fileInput.files[0];
    if (file) use(file, file.name);
  });

  const carriesFiles = (e) => [...(e.dataTransfer?.types ?? [])].includes("Files");
  document.addEventListener("dragover", (e) => {
    if (!carriesFiles(e)) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = "copy";
    dropzone.classList.add("over");
  });
  document.addEventListener("dragleave", (e) => {
    if (e.relatedTarget === null) dropzone.classList.remove("over");
  });
  document.addEventListener("drop", (e) => {
    dropzone.classList.remove("over");
    const file = pickFile(e.dataTransfer);
    if (!file) return;
    e.preventDefault();
    use(file, `dropped file ${file.name}`);
  });

  document.addEventListener("paste", (e) => {
    const file = pickFile(e.clipboardData);
    if (!file) return; // text: let it paste into the focused field
    e.preventDefault();
    use(file, "pasted image");
  });
}
