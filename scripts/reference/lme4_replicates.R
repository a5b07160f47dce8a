# Fit replicate data sets of a study in lme4 and print the criteria as JSON.
#
# Usage: Rscript scripts/reference/lme4_replicates.R factors "formula=METHOD" ... -- file.csv ...
#   factors: comma-separated grouping columns to treat as factors (e.g. "subj,item")
#   each "formula=METHOD" (METHOD REML or ML) is fitted to every CSV file
# Output: one JSON object: lme4 and R versions, and per file and fit the criterion
# (REMLcrit for REML, deviance for ML), sigma, the fixed effects and isSingular, with 15
# significant digits. The CSV files come from `python -m workbench.data`.

args <- commandArgs(trailingOnly = TRUE)
split <- match("--", args)
if (is.na(split) || split < 3) {
  message("usage: Rscript lme4_replicates.R factors formula=METHOD ... -- file.csv ...")
  quit(status = 2)
}
suppressPackageStartupMessages(library(lme4))
factors <- strsplit(args[[1]], ",")[[1]]
fits <- args[2:(split - 1)]
files <- args[(split + 1):length(args)]

number <- function(x) formatC(x, digits = 15, format = "g")
quote <- function(x) paste0("\"", gsub("\"", "\\\\\"", x), "\"")

entries <- c()
for (file in files) {
  data <- read.csv(file)
  for (column in factors) data[[column]] <- factor(data[[column]])
  for (fit_spec in fits) {
    parts <- strsplit(fit_spec, "=", fixed = TRUE)[[1]]
    method <- parts[[length(parts)]]
    formula <- paste(parts[-length(parts)], collapse = "=")
    model <- lmer(as.formula(formula), data = data, REML = method == "REML")
    criterion <- if (method == "REML") getME(model, "devcomp")$cmp[["REML"]] else deviance(model)
    beta <- fixef(model)
    fixed <- paste(sprintf("%s: %s", quote(names(beta)), number(beta)), collapse = ", ")
    entries <- c(entries, sprintf(
      "{\"file\": %s, \"formula\": %s, \"method\": %s, \"criterion\": %s, \"sigma\": %s, \"fixef\": {%s}, \"singular\": %s}",
      quote(basename(file)), quote(formula), quote(method), number(criterion), number(sigma(model)), fixed,
      if (isSingular(model)) "true" else "false"
    ))
  }
}
cat(sprintf("{\"lme4_version\": %s, \"r_version\": %s, \"fits\": [\n  %s\n]}\n",
  quote(as.character(packageVersion("lme4"))), quote(R.version.string), paste(entries, collapse = ",\n  ")))

# tests/data/barr_lme4.json was made with (study file: tests/data/barr_maximal.toml):
#   for pr in "0 0" "0 1" "0 2" "1 0" "1 1"; do set -- $pr
#     python -m workbench.data tests/data/barr_maximal.toml --point $1 --replicate $2 --out barr_p$1_r$2.csv; done
#   Rscript scripts/reference/lme4_replicates.R subj,item \
#     "y ~ 1 + cond + (1 + cond | subj) + (1 + cond | item)=REML" \
#     "y ~ 1 + cond + (1 + cond | subj) + (1 + cond | item)=ML" \
#     "y ~ 1 + cond + (1 | subj) + (1 | item)=REML" -- barr_p*.csv > tests/data/barr_lme4.json
