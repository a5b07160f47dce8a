# Time lme4::lmer on a CSV file, inside R, so that R's start-up is not counted.
#
# Usage: Rscript scripts/lme4_fit.R data.csv "formula" REML|ML timings calls [factor,columns]
#
# Each of the `timings` measurements covers `calls` consecutive lmer calls and reports the time
# per call: proc.time() counts whole milliseconds, so fast fits are timed in batches. One
# untimed fit of lme4's own sleepstudy first loads and byte-compiles lme4's code paths.
# Output: "key value ..." lines (lme4_version, r_version, seconds_per_call, loglik,
# objective, n_evals, optimizer, messages). Exit status 3 when lme4 cannot be loaded,
# 2 for bad arguments.

args <- commandArgs(trailingOnly = TRUE)
if (length(args) < 5 || !(args[[3]] %in% c("REML", "ML"))) {
  message("usage: Rscript lme4_fit.R data.csv formula REML|ML timings calls [factor,columns]")
  quit(status = 2)
}
if (!suppressWarnings(requireNamespace("lme4", quietly = TRUE))) {
  message("the R package lme4 is not installed")
  quit(status = 3)
}
suppressPackageStartupMessages(library(lme4))

data <- read.csv(args[[1]])
factors <- if (length(args) >= 6 && nzchar(args[[6]])) strsplit(args[[6]], ",")[[1]] else character()
for (column in factors) data[[column]] <- factor(data[[column]])
model_formula <- as.formula(args[[2]])
reml <- args[[3]] == "REML"
timings <- as.integer(args[[4]])
calls <- as.integer(args[[5]])

invisible(lmer(Reaction ~ Days + (Days | Subject), lme4::sleepstudy))

seconds_per_call <- numeric(timings)
for (i in seq_len(timings)) {
  start <- proc.time()[["elapsed"]]
  for (j in seq_len(calls)) fit <- lmer(model_formula, data, REML = reml)
  seconds_per_call[i] <- (proc.time()[["elapsed"]] - start) / calls
}

messages <- c(fit@optinfo$conv$lme4$messages, fit@optinfo$warnings)
loglik <- as.numeric(logLik(fit))
cat("lme4_version", as.character(packageVersion("lme4")), "\n")
cat("r_version", paste(R.version$major, R.version$minor, sep = "."), "\n")
cat("seconds_per_call", sprintf("%.6f", seconds_per_call), "\n")
cat("loglik", sprintf("%.10f", loglik), "\n")
# -2 log-likelihood: the deviance of an ML fit, the REML criterion of a REML fit.
cat("objective", sprintf("%.10f", -2 * loglik), "\n")
cat("n_evals", fit@optinfo$feval, "\n")
cat("optimizer", fit@optinfo$optimizer, "\n")
cat("messages", length(messages), "\n")
