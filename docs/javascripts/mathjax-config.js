// Render the \( \) and \[ \] math that pymdownx.arithmatex emits, if MathJax is present.
window.MathJax = {
  tex: { inlineMath: [["\\(", "\\)"]], displayMath: [["\\[", "\\]"]] },
  options: { processHtmlClass: "arithmatex" },
};
