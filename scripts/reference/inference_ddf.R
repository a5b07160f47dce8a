# Reference values for fixed-effect inference with denominator degrees of freedom:
# lme4 1.1-31 fits, lmerTest 3.1-3 Satterthwaite t tests, pbkrtest 0.5.2 Kenward-Roger.
#
# Usage (from the repository root):
#   Rscript scripts/reference/inference_ddf.R            writes tests/data/cluster16.csv,
#       tests/data/crossed12.csv and tests/data/inference_ddf.json
#   Rscript scripts/reference/inference_ddf.R --time N [data.csv formula factor,columns]
#       prints "case key seconds" lines: seconds per call of lme4::lmer, lmerTest::lmer and
#       lmerTest's summary() (Satterthwaite and Kenward-Roger), each the mean of N calls
#       timed inside R, on each data set below, or on the one given (case name "data")
#
# The two simulated data sets are drawn here once with fixed seeds and read back from
# their CSV files, so the fits see exactly the values the tests read.

args <- commandArgs(trailingOnly = TRUE)
timing <- length(args) >= 1 && args[[1]] == "--time"
calls <- if (timing && length(args) >= 2) as.integer(args[[2]]) else 20L
given <- if (timing && length(args) >= 4) args[3:length(args)] else NULL

suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest)
  library(pbkrtest)
  library(jsonlite)
})
stopifnot(
  packageVersion("lme4") == "1.1.31",
  packageVersion("lmerTest") == "3.1.3",
  packageVersion("pbkrtest") == "0.5.2"
)

data_dir <- file.path("tests", "data")

# 16 clusters of 5 to 12 observations; the treatment is given to 8 whole clusters.
write_cluster16 <- function(path) {
  set.seed(20261125)
  sizes <- sample(5:12, 16, replace = TRUE)
  treated <- sample(rep(0:1, each = 8))
  cluster <- rep(seq_len(16), sizes)
  effect <- rnorm(16, sd = 1)
  treat <- treated[cluster]
  y <- 10 + 1.5 * treat + effect[cluster] + rnorm(length(cluster), sd = 2)
  write.csv(data.frame(y = round(y, 6), treat = treat, cluster = cluster), path, row.names = FALSE)
}

# 12 subjects x 12 items, the condition (-0.5 / 0.5) within both, counterbalanced;
# 12 of the 144 cells are missing, so that the design is not balanced.
write_crossed12 <- function(path) {
  set.seed(12)
  d <- expand.grid(item = 1:12, subj = 1:12)
  d$cond <- ifelse((d$subj + d$item) %% 2 == 0, -0.5, 0.5)
  subj <- matrix(rnorm(24), 12) %*% diag(c(1, 0.8))
  item <- matrix(rnorm(24), 12) %*% diag(c(0.8, 0.7))
  d$y <- 5 + 0.8 * d$cond + subj[d$subj, 1] + subj[d$subj, 2] * d$cond +
    item[d$item, 1] + item[d$item, 2] * d$cond + rnorm(144, sd = 0.7)
  d <- d[-sample(144, 12), ]
  write.csv(data.frame(y = round(d$y, 6), cond = d$cond, subj = d$subj, item = d$item), path, row.names = FALSE)
}

cases <- list(
  list(case = "sleepstudy", data = "sleepstudy.csv",
       formula = "Reaction ~ 1 + Days + (1 + Days | Subject)", factors = "Subject", contrast = c(1, 7)),
  list(case = "cluster16", data = "cluster16.csv",
       formula = "y ~ 1 + treat + (1 | cluster)", factors = "cluster", contrast = c(1, 1)),
  list(case = "crossed12", data = "crossed12.csv",
       formula = "y ~ 1 + cond + (1 + cond | subj) + (1 + cond | item)", factors = c("subj", "item"),
       contrast = c(1, 0.5)),
  # a singular fit (the batch variance is estimated as 0): lmerTest warns and goes on
  list(case = "dyestuff2", data = "Dyestuff2.csv", formula = "Yield ~ 1 + (1 | Batch)", factors = "Batch",
       contrast = 2, singular = TRUE)
)

read_case <- function(case) {
  data <- read.csv(if (is.null(case$path)) file.path(data_dir, case$data) else case$path)
  for (column in case$factors) data[[column]] <- factor(data[[column]])
  data
}

table_of <- function(coefficients) {
  names <- rownames(coefficients)
  column <- function(name) as.list(setNames(unname(coefficients[, name]), names))
  list(
    estimate = column("Estimate"), std_error = column("Std. Error"), df = column("df"),
    statistic = column("t value"), p_value = column("Pr(>|t|)")
  )
}

contrast_of <- function(row) {
  list(estimate = row[["Estimate"]], std_error = row[["Std. Error"]], df = row[["df"]],
       statistic = row[["t value"]], p_value = row[["Pr(>|t|)"]])
}

# lme4's own table (estimate, SE, t) with z and residual-df t p-values computed here
lme4_tables <- function(fit) {
  coefficients <- coef(summary(as(fit, "lmerMod")))
  statistic <- coefficients[, "t value"]
  residual_df <- nrow(getME(fit, "X")) - ncol(getME(fit, "X"))
  tables <- list()
  for (ddf in c("asymptotic", "residual")) {
    df <- if (ddf == "asymptotic") Inf else residual_df
    p_value <- if (ddf == "asymptotic") 2 * pnorm(-abs(statistic)) else 2 * pt(-abs(statistic), residual_df)
    table <- cbind(coefficients, df = df, "Pr(>|t|)" = p_value)
    tables[[ddf]] <- table_of(table)
    # JSON has no infinity: the asymptotic df is written as the string "Inf"
    if (ddf == "asymptotic") tables[[ddf]]$df <- lapply(tables[[ddf]]$df, function(v) "Inf")
  }
  tables
}

reference <- function(case, reml) {
  data <- read_case(case)
  singular <- isTRUE(case$singular)
  fit <- if (singular) suppressMessages(lmerTest::lmer(as.formula(case$formula), data, REML = reml))
         else lmerTest::lmer(as.formula(case$formula), data, REML = reml)
  stopifnot(isSingular(fit) == singular, singular || length(fit@optinfo$conv$lme4$messages) == 0)
  tables <- lme4_tables(fit)
  out <- list(
    case = case$case, data = case$data, formula = case$formula, method = if (reml) "REML" else "ML",
    singular = singular,
    objective = -2 * as.numeric(logLik(fit)), sigma = sigma(fit), theta = I(unname(getME(fit, "theta"))),
    vcov = unname(as.matrix(vcov(fit))),
    # lmerTest's pieces: the covariance of (theta, sigma) from the Hessian of the criterion,
    # and the Jacobian of vcov(beta) in (theta, sigma), one p x p matrix per parameter
    vcov_varpar = unname(fit@vcov_varpar),
    jacobian = lapply(fit@Jac_list, unname),
    asymptotic = tables$asymptotic,
    residual = tables$residual,
    satterthwaite = table_of(coef(summary(fit, ddf = "Satterthwaite"))),
    contrast = list(L = I(case$contrast),
                    satterthwaite = contrast_of(contest1D(fit, case$contrast, ddf = "Satterthwaite")))
  )
  if (reml) {
    out[["kenward-roger"]] <- table_of(coef(summary(fit, ddf = "Kenward-Roger")))
    out$vcov_adjusted <- unname(as.matrix(pbkrtest::vcovAdj(fit)))
    out$contrast[["kenward-roger"]] <- contrast_of(contest1D(fit, case$contrast, ddf = "Kenward-Roger"))
  }
  out
}

seconds_per_call <- function(expression_fn) {
  expression_fn()  # once untimed: loads and byte-compiles the code paths
  start <- proc.time()[["elapsed"]]
  for (i in seq_len(calls)) expression_fn()
  (proc.time()[["elapsed"]] - start) / calls
}

if (timing) {
  cat("r_version", paste(R.version$major, R.version$minor, sep = "."), "\n")
  cat("calls", calls, "\n")
  if (!is.null(given)) {
    factors <- if (length(given) >= 3 && nzchar(given[[3]])) strsplit(given[[3]], ",")[[1]] else character()
    cases <- list(list(case = "data", path = given[[1]], formula = given[[2]], factors = factors))
  }
  for (case in cases) {
    data <- read_case(case)
    formula <- as.formula(case$formula)
    fit <- lmerTest::lmer(formula, data)
    cat(case$case, "lme4_lmer", sprintf("%.6f", seconds_per_call(function() lme4::lmer(formula, data))), "\n")
    cat(case$case, "lmerTest_lmer", sprintf("%.6f", seconds_per_call(function() lmerTest::lmer(formula, data))), "\n")
    cat(case$case, "summary_satterthwaite",
        sprintf("%.6f", seconds_per_call(function() summary(fit, ddf = "Satterthwaite"))), "\n")
    cat(case$case, "summary_kenward_roger",
        sprintf("%.6f", seconds_per_call(function() summary(fit, ddf = "Kenward-Roger"))), "\n")
  }
  quit(status = 0)
}

write_cluster16(file.path(data_dir, "cluster16.csv"))
write_crossed12(file.path(data_dir, "crossed12.csv"))
results <- list()
for (case in cases) {
  results[[length(results) + 1]] <- reference(case, TRUE)
  if (case$case == "sleepstudy") results[[length(results) + 1]] <- reference(case, FALSE)
}
document <- list(
  versions = list(
    r = paste(R.version$major, R.version$minor, sep = "."),
    lme4 = as.character(packageVersion("lme4")),
    lmerTest = as.character(packageVersion("lmerTest")),
    pbkrtest = as.character(packageVersion("pbkrtest"))
  ),
  cases = results
)
writeLines(toJSON(document, auto_unbox = TRUE, digits = NA, pretty = TRUE), file.path(data_dir, "inference_ddf.json"))
