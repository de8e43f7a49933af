/** Tailwind scans the templates for the classes Strata uses. */
module.exports = {
  content: ["../templates/**/*.html", "../*/templates/**/*.html", "./src/**/*.js"],
  theme: {
    extend: {
      colors: {
        brand: { 50: "#eef4ff", 100: "#dbe6fe", 500: "#4f6df5", 600: "#3b55e6", 700: "#2f43c4", 900: "#1e2a6b" },
      },
    },
  },
  plugins: [],
};
