"""cua inside other frameworks: ``openai_agents`` (a computer for the OpenAI Agents SDK)."""
