/** One-off charge categories (docs/payment-plan.md §6.6) and their fixed line descriptions. */
export const chargeCategories = ["setup", "onboarding", "training", "data_migration", "hardware", "other"] as const;
export type ChargeCategory = (typeof chargeCategories)[number];

export const chargeDescriptions: Record<ChargeCategory, string> = {
  setup: "Setup",
  onboarding: "Onboarding",
  training: "Training",
  data_migration: "Data migration",
  hardware: "Hardware",
  other: "Other charge",
};
